"""The event envelope and catalogue: what producers build is what consumers load."""
from __future__ import annotations

import json

import pytest

from shared.events import PoisonEvent, UnknownEventType, decode, encode, new_event
from shared.events.catalogue import CATALOGUE, pair


def follow_created(**overrides):
    data = {"follower": "ada", "followee": "grace", "reason": "explicit", "since": "2026-11-26T10:15:00.123Z"}
    return new_event("follows", "follow.created", {**data, **overrides})


def test_an_event_has_the_cloudevents_attributes_and_a_versioned_type():
    envelope = json.loads(encode(follow_created()))
    assert envelope["specversion"] == "1.0"
    assert envelope["source"] == "rapport/follows"
    assert envelope["type"] == "rapport.follows.follow.created.v1"
    assert envelope["subject"] == "ada|grace"
    assert envelope["data"]["notify_on_post"] is False


def test_encode_then_decode_gives_the_same_event():
    event = follow_created()
    assert decode(encode(event), event.key.encode()) == event


def test_connection_events_are_keyed_by_the_sorted_member_pair():
    event = new_event("connections", "invitation.sent", {
        "invitation_id": "i1", "inviter": "zoe", "invitee": "ada", "sent_at": "2026-11-26T10:00:00Z"})
    assert event.key == pair("ada", "zoe") == "ada|zoe"


def test_post_events_are_keyed_by_author():
    event = new_event("feed", "post.created", {"post_id": "p1", "author": "ada", "visibility": "public",
                                               "created_at": "2026-11-26T10:00:00Z"})
    assert event.key == "ada"


def test_a_producer_cannot_build_an_event_that_breaks_its_schema():
    with pytest.raises(ValueError):
        follow_created(reason="telepathy")


@pytest.mark.parametrize("raw", [b"", b"{nope", b"[]", b'{"specversion": "1.0"}', "é".encode("latin-1")])
def test_undecodable_or_invalid_messages_are_poison(raw):
    with pytest.raises(PoisonEvent):
        decode(raw)


def test_data_failing_its_schema_is_poison():
    envelope = json.loads(encode(follow_created()))
    envelope["data"]["follower"] = "not a member id!"
    with pytest.raises(PoisonEvent, match="follower"):
        decode(json.dumps(envelope).encode())


def test_an_unknown_type_is_skipped_not_poison():
    envelope = json.loads(encode(follow_created()))
    envelope["type"] = "rapport.follows.follow.created.v9"
    with pytest.raises(UnknownEventType):
        decode(json.dumps(envelope).encode())


def test_an_added_field_does_not_break_consumers():
    envelope = json.loads(encode(follow_created()))
    envelope["data"]["mood"] = "curious"
    assert "mood" not in decode(json.dumps(envelope).encode()).data


def test_every_type_in_the_catalogue_is_versioned_and_named_after_its_service():
    for etype in CATALOGUE:
        assert etype.type.startswith(f"rapport.{etype.service}.") and etype.type.endswith(f".v{etype.version}")
