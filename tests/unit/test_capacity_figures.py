"""The arithmetic bench.capacity divides its measurements with, and the inbox it fills."""
from collections import Counter

from bench.capacity import difference, inbox_events, text_of, total


def test_difference_keeps_only_the_kinds_a_load_changed_with_what_it_added():
    before = {"member": {"keys": 10, "bytes": 1_840}, "inbox": {"keys": 2, "bytes": 500}}
    after = {"member": {"keys": 10, "bytes": 1_840}, "inbox": {"keys": 5, "bytes": 2_000},
             "notes": {"keys": 3, "bytes": 900}}
    assert difference(after, before) == {"inbox": {"keys": 3, "bytes": 1_500}, "notes": {"keys": 3, "bytes": 900}}


def test_total_sums_the_named_kinds_present_or_all_without_names():
    kinds = {"a": {"keys": 1, "bytes": 10}, "b": {"keys": 1, "bytes": 5}}
    assert total(kinds) == 15
    assert total(kinds, "a", "missing") == 10


def test_an_inbox_is_given_twenty_events_a_day_of_the_product_s_mix():
    events = inbox_events("m", ["a", "b", "c"], start_ms=0, days=2)
    assert len(events) == 40
    assert Counter(e[2] for e in events[:20]) == {
        "new_post": 10, "post_liked": 4, "post_commented": 1, "new_follower": 2, "invitation_received": 1,
        "invitation_accepted": 1, "endorsement_received": 1}
    assert [e[5] for e in events] == sorted(e[5] for e in events)  # oldest first, as the consumer is given them


def test_text_of_is_the_length_asked_ending_a_sentence():
    text = text_of(80, "Good to hear from you. ")
    assert len(text) <= 81 and text.endswith(".")
