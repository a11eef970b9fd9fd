"""Rules of growing the network that need no I/O."""
import pytest

from services.connections.endorsements import normalise
from services.notifications.inbox import summary
from shared.problems import Invalid


def test_skills_match_regardless_of_case_and_spacing():
    assert normalise("  Machine   Learning ") == ("Machine Learning", "machine learning")
    assert normalise("machine learning")[1] == normalise("MACHINE LEARNING")[1]


@pytest.mark.parametrize("skill", ["", "   ", "x" * 81, "tab\x00bed"])
def test_a_skill_is_one_to_eighty_printable_characters(skill):
    with pytest.raises(Invalid):
        normalise(skill)


def test_the_requester_reads_the_outcome_of_an_introduction():
    assert summary("introduction_forwarded", ["grace"], 1, "i1", None, "linus") == "grace introduced you to linus"
    assert summary("introduction_declined", ["grace"], 1, "i1", None, "linus") == \
        "grace declined to introduce you to linus"


@pytest.mark.parametrize("skill", ["\u3164", "\u2800\u2800", "\u200b", "   "])
def test_a_skill_with_nothing_visible_is_refused(skill):
    with pytest.raises(Invalid) as caught:
        normalise(skill)
    assert caught.value.code == "invalid_skill"
