"""The event path end to end: an HTTP write in follows becomes a notification.

follows stores the edge and its event in one transaction; the relay publishes it to
Kafka; the notifications worker consumes it and stores a ``new_follower`` notification.
"""
from __future__ import annotations

import json

from kafka import KafkaProducer

from shared.events import encode, new_event
from tests.support.infra import eventually, events_of, read_topic, next_version


def notifications_of(apps, auth, member):
    response = apps("notifications").get("/v1/notifications", headers=auth(member))
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_a_follow_notifies_the_followee(apps, auth, workers, settings, unique):
    workers("follows"), workers("notifications")
    ada, grace = unique("ada"), unique("grace")

    response = apps("follows").put(f"/v1/following/{grace}", headers=auth(ada))

    assert response.status_code == 201
    items = eventually(lambda: notifications_of(apps, auth, grace), message="new_follower notification")
    assert [(n["type"], n["actors"], n["read"]) for n in items] == [("new_follower", [ada], False)]
    events = read_topic(settings, "follows.events",
                        lambda evs: events_of(evs, "follow.created", follower=ada, followee=grace))
    assert events_of(events, "follow.created", follower=ada, followee=grace)[0].data["reason"] == "explicit"


def test_following_twice_is_one_follow_and_one_notification(apps, auth, workers, unique):
    workers("follows"), workers("notifications")
    ada, grace = unique("ada"), unique("grace")

    first = apps("follows").put(f"/v1/following/{grace}", headers=auth(ada))
    second = apps("follows").put(f"/v1/following/{grace}", headers=auth(ada))

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["since"] == second.json["since"]
    eventually(lambda: notifications_of(apps, auth, grace))
    assert len(notifications_of(apps, auth, grace)) == 1


def _producer(settings):
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")


def test_the_same_event_delivered_twice_gives_one_notification(apps, auth, workers, settings, unique):
    workers("notifications")
    ada, grace, linus, hopper = unique("ada"), unique("grace"), unique("linus"), unique("hopper")
    event = new_event("follows", "follow.created", {"follower": ada, "followee": grace, "reason": "explicit",
                                                    "since": "2026-11-26T10:00:00.000Z", "version": next_version()})
    producer = _producer(settings)
    for _ in range(2):
        producer.send(settings.topic("follows.events"), key=event.key.encode(), value=encode(event))
    # Sent after both copies with the same key, so on the same partition: once it is handled,
    # both copies were.
    marker = new_event("follows", "follow.created", {"follower": linus, "followee": hopper,
                                                     "reason": "explicit", "since": "2026-11-26T10:00:01.000Z",
                                                     "version": next_version()})
    producer.send(settings.topic("follows.events"), key=event.key.encode(), value=encode(marker)).get(10)
    producer.close()

    eventually(lambda: notifications_of(apps, auth, hopper), message="marker notification")
    items = notifications_of(apps, auth, grace)
    assert [(n["type"], n["actors"], n["actor_count"]) for n in items] == [("new_follower", [ada], 1)]
    count = apps("notifications").get("/v1/notifications/unread-count", headers=auth(grace))
    assert count.get_json() == {"count": 1}


def test_a_poison_message_goes_to_the_dlq_and_the_next_event_is_handled(apps, auth, workers, settings, unique):
    workers("notifications")
    ada, grace = unique("ada"), unique("grace")
    producer = _producer(settings)
    key = f"{ada}|{grace}".encode()
    producer.send(settings.topic("follows.events"), key=key, value=b"{not json")
    bad_schema = json.loads(encode(new_event("follows", "follow.created", {
        "follower": ada, "followee": grace, "reason": "explicit", "since": "2026-11-26T10:00:00.000Z",
        "version": next_version()})))
    bad_schema["data"]["reason"] = "telepathy"
    producer.send(settings.topic("follows.events"), key=key, value=json.dumps(bad_schema).encode())
    good = new_event("follows", "follow.created", {"follower": ada, "followee": grace, "reason": "explicit",
                                                   "since": "2026-11-26T10:00:02.000Z", "version": next_version()})
    producer.send(settings.topic("follows.events"), key=key, value=encode(good)).get(10)
    producer.close()

    items = eventually(lambda: notifications_of(apps, auth, grace), message="the valid event's notification")
    assert [n["actors"] for n in items] == [[ada]]
    dead = read_topic(settings, "follows.events.dlq",
                      lambda recs: len([r for r in recs if r.key == key]) >= 2, raw=True)
    reasons = {r.value: dict(r.headers)["dlq.reason"].decode() for r in dead if r.key == key}
    assert reasons.pop(b"{not json").startswith("undecodable")
    [schema_reason] = reasons.values()
    assert "invalid rapport.follows.follow.created.v1 data" in schema_reason and "reason" in schema_reason
    assert all(dict(r.headers)["dlq.topic"] == settings.topic("follows.events").encode()
               for r in dead if r.key == key)
