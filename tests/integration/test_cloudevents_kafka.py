"""The records on Kafka are CloudEvents as the Kafka protocol binding defines them: the official
Python SDK (``cloudevents``) decodes what the real relay published, and what a consumer sent on
to a DLQ, choosing structured or binary mode by the record's ``content-type`` as the binding says."""
from __future__ import annotations

import json

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from kafka import KafkaProducer

from shared.bus.outbox import structured_headers
from shared.clock import parse_rfc3339
from shared.events import encode, new_event
from tests.support.infra import next_version, read_topic


def sdk_decode(record):
    """The record as the SDK reads it by itself: ``from_kafka`` picks the mode from the headers
    (binary when any ``ce_*`` header is there, else structured by the content-type)."""
    headers = {name: value for name, value in record.headers}
    assert not [name for name in headers if name.startswith("ce_")], "no binary-mode header on a structured record"
    message = ce_kafka.KafkaMessage(headers=headers, key=record.key, value=record.value)
    return ce_kafka.from_kafka(message, JSONFormat())


def assert_same_event(sdk_event, envelope: dict) -> None:
    assert sdk_event.get_specversion() == "1.0"
    assert sdk_event.get_type() == envelope["type"]
    assert sdk_event.get_source() == envelope["source"]
    assert sdk_event.get_id() == envelope["id"]
    assert sdk_event.get_subject() == envelope["subject"]
    assert int(sdk_event.get_time().timestamp() * 1000) == parse_rfc3339(envelope["time"])
    assert sdk_event.get_data() == envelope["data"]


def test_the_relays_records_of_a_follow_and_a_post_decode_with_the_cloudevents_sdk(apps, auth, workers, settings,
                                                                                     unique):
    workers("follows")
    workers("feed")
    ada, grace = unique("ada"), unique("grace")
    assert apps("follows").put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201
    post = apps("feed").post("/v1/posts", headers=auth(grace), json={"text": "Structured, on the wire."})
    assert post.status_code == 201

    follows = read_topic(settings, "follows.events", raw=True, timeout=30,
                         until=lambda rs: any(r.key == f"{ada}|{grace}".encode() for r in rs))
    posts = read_topic(settings, "feed.events", raw=True, timeout=30,
                       until=lambda rs: any(json.loads(r.value)["data"].get("post_id") == post.get_json()["id"]
                                            for r in rs if r.key == grace.encode()))
    ours = [r for r in follows if r.key == f"{ada}|{grace}".encode()] + \
           [r for r in posts if r.key == grace.encode()]

    assert {json.loads(r.value)["type"] for r in ours} == {"rapport.follows.follow.created.v1",
                                                            "rapport.feed.post.created.v1"}
    for record in ours:
        assert dict(record.headers)["content-type"] == b"application/cloudevents+json; charset=UTF-8"
        envelope = json.loads(record.value)
        decoded = sdk_decode(record)
        assert_same_event(decoded, envelope)
        assert decoded.get_time().utcoffset().total_seconds() == 0
    created = next(sdk_decode(r) for r in ours if r.key == grace.encode())
    assert (created.get_source(), created.get_data()["author"], created.get_data()["post_id"]) == \
        ("rapport/feed", grace, post.get_json()["id"])


def test_a_dead_letter_keeps_its_headers_and_decodes_with_the_cloudevents_sdk(workers, settings, unique):
    workers("notifications")
    ada, grace = unique("ada"), unique("grace")
    poison = json.loads(encode(new_event("follows", "follow.created", {
        "follower": ada, "followee": grace, "reason": "explicit", "since": "2026-11-26T10:00:00.000Z",
        "version": next_version()})))
    poison["data"]["reason"] = "telepathy"  # a valid CloudEvent whose data fails the catalogue
    value = json.dumps(poison).encode()
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    try:
        producer.send(settings.topic("follows.events"), key=f"{ada}|{grace}".encode(), value=value,
                      headers=structured_headers(value.decode())).get(10)
    finally:
        producer.close()

    dead = read_topic(settings, "follows.events.dlq", raw=True, timeout=30,
                      until=lambda rs: any(r.value == value for r in rs))
    letters = [r for r in dead if r.value == value]  # one per consumer group of follows.events here

    assert letters
    for record in letters:
        headers = dict(record.headers)
        assert headers["content-type"] == b"application/cloudevents+json; charset=UTF-8"
        assert headers["rapport-type"] == b"rapport.follows.follow.created.v1"
        assert "invalid rapport.follows.follow.created.v1 data" in headers["dlq.reason"].decode()
        assert_same_event(sdk_decode(record), poison)
