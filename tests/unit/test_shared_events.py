"""The event envelope and catalogue: what producers build is what consumers load."""
from __future__ import annotations

import json

import pytest

from shared.events import PoisonEvent, UnknownEventType, decode, encode, new_event
from shared.events.catalogue import CATALOGUE, pair


def follow_created(**overrides):
    data = {"follower": "ada", "followee": "grace", "reason": "explicit", "since": "2026-11-26T10:15:00.123Z",
            "version": 1}
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
        "invitation_id": "0" * 32, "inviter": "zoe", "invitee": "ada", "sent_at": "2026-11-26T10:00:00Z"})
    assert event.key == pair("ada", "zoe") == "ada|zoe"


def test_post_events_are_keyed_by_author():
    event = new_event("feed", "post.created", {"post_id": "ada~p1", "author": "ada", "visibility": "public",
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


def _poison_with(etype: str, field: str, value):
    """Decode an event of ``etype`` built valid, then with ``field`` set to ``value``."""
    builders = {
        "rapport.connections.introduction.requested.v1": lambda: new_event("connections", "introduction.requested", {
            "introduction_id": "a" * 32, "requester": "ada", "target": "grace", "via": "linus", "note": "hi",
            "at": "2026-11-26T10:00:00Z"}),
        "rapport.feed.fanout.batch.v1": lambda: new_event("feed", "fanout.batch", {
            "post_id": "ada~k1", "author": "ada", "created_at": "2026-11-26T10:00:00Z", "created_ms": 1, "batch": 1,
            "members": ["grace"]}),
        "rapport.feed.post.liked.v1": lambda: new_event("feed", "post.liked", {
            "post_id": "ada~k1", "author": "ada", "actor": "grace", "at": "2026-11-26T10:00:00Z"}),
        "rapport.feed.comment.added.v1": lambda: new_event("feed", "comment.added", {
            "comment_id": "k2ab", "post_id": "ada~k1", "author": "ada", "commenter": "grace", "excerpt": "ok",
            "at": "2026-11-26T10:00:00Z"}),
        "rapport.connections.invitation.sent.v1": lambda: new_event("connections", "invitation.sent", {
            "invitation_id": "b" * 32, "inviter": "ada", "invitee": "grace", "sent_at": "2026-11-26T10:00:00Z"}),
        "rapport.follows.follow.created.v1": follow_created,
    }
    import services.feed.fanout  # noqa: F401  - registers fanout.batch
    envelope = json.loads(encode(builders[etype]()))
    decode(json.dumps(envelope).encode())  # valid as built
    envelope["data"][field] = value
    return json.dumps(envelope).encode()


@pytest.mark.parametrize("etype,field,value", [
    ("rapport.connections.introduction.requested.v1", "note", "x" * 900_000),
    ("rapport.connections.invitation.sent.v1", "message", "x" * 301),
    ("rapport.connections.invitation.sent.v1", "invitation_id", "../../etc"),
    ("rapport.connections.invitation.sent.v1", "introduced_by", "not a member!"),
    ("rapport.connections.introduction.requested.v1", "introduction_id", "x" * 5000),
    ("rapport.feed.fanout.batch.v1", "post_id", "adak1"),
    ("rapport.feed.post.liked.v1", "post_id", "ada~K 1"),
    ("rapport.feed.comment.added.v1", "comment_id", "bad id"),
    ("rapport.feed.comment.added.v1", "excerpt", "x" * 201),
    ("rapport.follows.follow.created.v1", "since", "2026-11-26T10:00:00Z" + " " * 100),
    ("rapport.follows.follow.created.v1", "version", 0),
    ("rapport.follows.follow.created.v1", "version", "7"),
    ("rapport.follows.follow.created.v1", "version", 2 ** 60),
], ids=lambda v: str(v)[:40])
def test_an_event_with_an_id_out_of_format_or_a_string_too_long_is_poison(etype, field, value):
    with pytest.raises(PoisonEvent, match=field):
        decode(_poison_with(etype, field, value))


def test_a_versioned_event_without_its_version_is_poison():
    envelope = json.loads(encode(follow_created()))
    del envelope["data"]["version"]
    with pytest.raises(PoisonEvent, match="version"):
        decode(json.dumps(envelope).encode())


def test_a_pending_version_is_a_placeholder_only_the_store_script_may_fill():
    """Built with ``PENDING_VERSION``, an event validates and carries 0, which no consumer accepts."""
    from shared.events.envelope import PENDING_VERSION
    event = follow_created(version=PENDING_VERSION)
    assert event.data["version"] == 0
    with pytest.raises(PoisonEvent, match="version"):
        decode(encode(event))


@pytest.mark.parametrize("attribute", ["time", "subject", "datacontenttype"])
def test_an_envelope_attribute_too_long_is_poison(attribute):
    envelope = json.loads(encode(follow_created()))
    envelope[attribute] = "x" * 100_000
    with pytest.raises(PoisonEvent, match=attribute):
        decode(json.dumps(envelope).encode())


def test_events_built_while_handling_an_event_have_ids_a_retry_builds_again():
    from shared.events.envelope import caused_by

    def emit():
        return [new_event("follows", "follow.created", {"follower": f, "followee": "grace", "reason": "connection",
                                                        "since": "2026-11-26T10:00:00.000Z", "version": 1}).id
                for f in ("ada", "linus")]

    with caused_by("dedup:follows.connections:rapport/connections|e1"):
        first = emit()
    with caused_by("dedup:follows.connections:rapport/connections|e1"):
        retried = emit()
    with caused_by("dedup:follows.connections:rapport/connections|e2"):
        other = emit()

    assert first == retried and len(set(first)) == 2
    assert not set(other) & set(first)
    assert len(set(emit() + emit())) == 4  # outside a handler: new ids every time


@pytest.mark.parametrize("time", ["2026-11-26", "2026-11-26 10:00:00Z", "2026-11-26T10:00:00", "2026-02-30T10:00:00Z"])
def test_an_event_whose_time_or_data_time_is_not_rfc_3339_is_poison(time):
    good = json.loads(encode(new_event("follows", "follow.created", {
        "follower": "ada", "followee": "grace", "reason": "explicit", "since": "2026-11-26T10:00:00.000Z",
        "version": 1})))
    in_envelope, in_data = dict(good, time=time), dict(good, data=dict(good["data"], since=time))

    for body in (in_envelope, in_data):
        with pytest.raises(PoisonEvent, match="time|since"):
            decode(json.dumps(body).encode())


def test_the_times_services_stamp_are_rfc_3339():
    from shared.clock import is_rfc3339, rfc3339

    assert all(is_rfc3339(rfc3339(ms)) for ms in (0, 1, 1_764_000_000_123, 253_402_300_799_999))
    assert is_rfc3339(new_event("follows", "follow.created", {
        "follower": "ada", "followee": "grace", "reason": "explicit", "since": rfc3339(1_764_000_000_000),
        "version": 1}).time)


def _envelope_variants():
    base = json.loads(encode(follow_created()))
    yield dict(base)
    values = [None, "", "1.0", "0.3", 1, 1.0, True, [], {}, "x" * 40, "x" * 41, "x" * 101, "x" * 201,
              "2026-11-26T10:15:00.123Z", "2026-02-30T10:00:00Z", "2026-11-26T10:15:00.123Z" + " " * 20]
    for attribute in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"):
        missing = dict(base)
        del missing[attribute]
        yield missing
        for value in values:
            yield {**base, attribute: value}
    yield {**base, "data": {"anything": 1}, "extension": "kept out"}


@pytest.mark.parametrize("envelope", list(_envelope_variants()), ids=lambda e: json.dumps(e)[:60])
def test_the_written_out_envelope_check_agrees_with_the_envelope_schema(envelope):
    """decode() checks the envelope by hand (load_envelope) for speed; EnvelopeSchema is the rule."""
    from marshmallow import ValidationError
    from shared.events.envelope import EnvelopeSchema, load_envelope
    try:
        expected = EnvelopeSchema().load(envelope)
    except ValidationError as exc:
        with pytest.raises(ValidationError) as got:
            load_envelope(envelope)
        assert set(got.value.messages) == set(exc.messages)
    else:
        assert load_envelope(envelope) == expected
