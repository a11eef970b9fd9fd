"""How a notification reads: one line naming who did what, grouped actors counted."""
from services.notifications.inbox import TYPES, summary, who
from services.notifications.live import STREAM_ID


def test_one_two_and_many_actors():
    assert who(["ada"], 1) == "ada"
    assert who(["ada", "grace"], 2) == "ada and grace"
    assert who(["ada", "grace", "linus"], 4) == "ada and 3 others"


def test_a_grouped_like_reads_as_the_latest_actor_and_the_others():
    assert summary("post_liked", ["ada", "grace"], 4, "p1", None, None) == "ada and 3 others liked your post"


def test_an_invitation_carries_its_message_and_its_introducer():
    assert summary("invitation_received", ["ada"], 1, "i1", "Hello", None) == 'ada invited you to connect: "Hello"'
    assert summary("invitation_received", ["ada"], 1, "i1", None, "linus") == \
        "ada invited you to connect (introduced by linus)"


def test_every_type_has_its_own_wording():
    lines = {summary(t, ["ada"], 1, "x", None, "grace") for t in TYPES}
    assert len(lines) == len(TYPES)
    assert not any(t in line for t in TYPES for line in lines)


def test_only_stream_ids_are_accepted_as_last_event_ids():
    assert STREAM_ID.match("1764151200000-0")
    assert not STREAM_ID.match("yesterday") and not STREAM_ID.match("1-0; DROP")
