"""The messaging rules that need no store: conversation ids, message ids, what a start refuses."""
import pytest

from services.messaging.conversations import (
    _check_participants,
    _check_text,
    direct_id,
    group_id,
    message_id,
    seq_of,
)
from shared.problems import Invalid


def test_two_members_have_one_conversation_whoever_writes_first():
    assert direct_id("ada", "grace") == direct_id("grace", "ada")
    assert direct_id("ada", "grace") != direct_id("ada", "linus")


def test_a_group_started_with_an_idempotency_key_gets_the_same_id_again_and_without_one_a_new_one():
    assert group_id("ada", "k1") == group_id("ada", "k1") != group_id("grace", "k1")
    assert group_id("ada", None) != group_id("ada", None)


@pytest.mark.parametrize("message", ["abc-0", "abc-01", "abc-", "abc-x1", "abd-1", "abc-١", "abc-" + "9" * 16, "1"])
def test_a_message_id_names_a_message_of_its_conversation_only(message):
    assert seq_of("abc", message) is None


def test_a_message_id_gives_back_its_seq():
    assert seq_of("abc", message_id("abc", 42)) == 42


@pytest.mark.parametrize("participants,code", [([], "no_participants"), (["ada"], "cannot_message_self"),
                                               (["b", "b"], "duplicate_participants"),
                                               ([f"m{i}" for i in range(50)], "too_many_participants")])
def test_a_start_refuses_no_one_oneself_a_duplicate_and_more_than_49_others(participants, code):
    with pytest.raises(Invalid) as refused:
        _check_participants("ada", participants)
    assert refused.value.code == code


def test_a_group_of_49_others_is_allowed():
    assert len(_check_participants("ada", [f"m{i}" for i in range(49)])) == 49


@pytest.mark.parametrize("text,code", [("", "empty_text"), (" \n", "empty_text"), ("x" * 8001, "text_too_long")])
def test_a_message_needs_text_of_at_most_8000_characters(text, code):
    with pytest.raises(Invalid) as refused:
        _check_text(text)
    assert refused.value.code == code
