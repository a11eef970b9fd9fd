"""Consumers whose batch reads its handlers' state in one round trip ahead of them
(``Consumer.reads_ahead``), against the real Redis (the records as Kafka would hand them over):
follows.followers (the edges) and connections.suggestions (the pairs' records)."""
from __future__ import annotations

import dataclasses
import uuid

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from tests.support.trips import round_trips
from services.follows import following, store as keys, worker
from shared.bus.consumer import HANDLED_OK, ConsumerRunner
from shared.bus.outbox import Outbox
from shared.events import encode, new_event


@pytest.fixture
def unprojected(apps, auth, unique, monkeypatch):
    """``(follower, followees)``: ten follows made through the API, none projected yet onto the
    followees' followers (as if each request stopped right after its script)."""
    follows = apps("follows")
    ada, followees = unique("ada"), [unique(f"grace{i}") for i in range(10)]
    with monkeypatch.context() as patched:
        patched.setattr(following, "project_edge", lambda *args, **kwargs: False)
        for followee in followees:
            assert follows.put(f"/v1/following/{followee}", headers=auth(ada)).status_code == 201
    return follows.application.extensions["rapport.store"], ada, followees


def as_records(settings, topic: str, events) -> list[ConsumerRecord]:
    made = []
    for offset, event in enumerate(events):
        value = encode(event)
        made.append(ConsumerRecord(settings.topic(topic), 0, None, offset, 0, 0, event.key.encode(), value,
                                   [], None, 2, len(value), -1))
    return made


def records(settings, store, follower: str, followees: list[str]) -> list[ConsumerRecord]:
    return as_records(settings, "follows.events", [new_event("follows", "follow.created", {
        "follower": follower, "followee": followee, "reason": "explicit", "notify_on_post": False,
        "since": "2026-12-03T10:00:00.000Z", "version": int(store.get(keys.follow_version(follower, followee)))})
        for followee in followees])


def consumer_of(service_worker, settings, name: str, **changes):
    spec = next(c for c in service_worker.consumers(settings) if c.name == name)
    return dataclasses.replace(spec, **changes)


def followers_consumer(settings, **changes):
    return consumer_of(worker, settings, "follows.followers", **changes)


def test_a_batch_of_follows_reads_its_edges_in_one_round_trip_and_projects_each(settings, unprojected):
    store, ada, followees = unprojected
    store.script_load(keys.EDGE_NOW.source)  # as a running worker has it (another test may flush scripts)
    runner = ConsumerRunner(followers_consumer(settings), settings, store, Outbox("follows", settings))
    batch = records(settings, store, ada, followees)
    handled = []

    trips = round_trips([store], lambda: handled.extend(runner.process(batch)))

    assert [item.outcome for item in handled] == [HANDLED_OK] * len(followees)
    assert all(store.zscore(keys.followers(followee), ada) is not None for followee in followees)
    # The events' markers, the ten edges, the parts' markers, the batch's MULTI/EXEC.
    assert trips == 4


def test_a_batch_whose_reads_ahead_fail_is_projected_by_handlers_reading_for_themselves(settings, unprojected):
    store, ada, followees = unprojected

    def failing(store, events, settings):
        raise ValueError("a reads-ahead bug")

    runner = ConsumerRunner(followers_consumer(settings, reads_ahead=failing), settings, store,
                            Outbox("follows", settings))

    batch = records(settings, store, ada, followees)
    handled = []

    trips = round_trips([store], lambda: handled.extend(runner.process(batch)))

    assert [item.outcome for item in handled] == [HANDLED_OK] * len(followees)
    assert trips == 3 + len(followees)  # one MULTI per edge, as each handler reads its own
    assert all(store.zscore(keys.followers(followee), ada) is not None for followee in followees)


def test_a_batch_of_invitations_reads_the_pairs_records_in_one_round_trip_and_projects_both_sides(
        settings, apps, auth, unique, monkeypatch):
    from services.connections import invitations, store as connection_keys, worker as connections_worker

    connections = apps("connections")
    ada, others = unique("ada"), [unique(f"grace{i}") for i in range(10)]
    sent = []
    with monkeypatch.context() as patched:  # as if each request stopped right after its script
        patched.setattr(invitations.projections, "project", lambda *args, **kwargs: None)
        for other in others:
            answer = connections.post("/v1/invitations", json={"invitee": other}, headers=auth(ada))
            assert answer.status_code == 201
            sent.append(answer.get_json())
    store = connections.application.extensions["rapport.store"]
    assert store.zcard(connection_keys.sent(ada)) == 0
    batch = as_records(settings, "connections.events", [new_event("connections", "invitation.sent", {
        "invitation_id": body["id"], "inviter": ada, "invitee": body["invitee"], "message": None,
        "sent_at": body["created_at"], "introduced_by": None}) for body in sent])
    spec = consumer_of(connections_worker, settings, "connections.suggestions")
    runner = ConsumerRunner(spec, settings, store, Outbox("connections", settings))
    handled = []

    trips = round_trips([store], lambda: handled.extend(runner.process(batch)))

    assert [item.outcome for item in handled] == [HANDLED_OK] * len(others)
    assert set(store.zrange(connection_keys.sent(ada), 0, -1)) == {body["id"] for body in sent}
    assert all(store.zcard(connection_keys.received(other)) == 1 for other in others)
    # The events' markers, the ten records, the parts' markers, the batch's MULTI/EXEC.
    assert trips == 4


def run_accepted(settings, store, spec, service: str, pairs, extra=None) -> tuple[list, int]:
    """A batch of ``invitation.accepted`` of ``pairs`` through ``spec``'s consumer: its items, and
    the round trips it took."""
    runner = ConsumerRunner(spec, settings, store, Outbox(service, settings), extra=extra)
    batch = as_records(settings, "connections.events", [new_event("connections", "invitation.accepted", {
        "invitation_id": uuid.uuid4().hex, "inviter": a, "invitee": b, "at": "2026-12-03T10:00:00.000Z",
        "version": 1}) for a, b in pairs])
    handled = []
    trips = round_trips([store], lambda: handled.extend(runner.process(batch)))
    return handled, trips


def test_a_batch_of_accepted_invitations_reads_the_members_records_in_one_round_trip_and_projects_both_sides(
        settings, unique):
    from services.profiles import store as profile_keys, worker as profiles_worker
    from shared import store_client

    store = store_client.connect(settings.store_url("profiles"))
    store.ping()  # the connection made, not counted
    keys = profile_keys.Keys(settings.shards)
    pairs = [(unique(f"ada{i}"), unique(f"grace{i}")) for i in range(10)]

    handled, trips = run_accepted(settings, store, consumer_of(profiles_worker, settings, "profiles.network"), "profiles", pairs)

    assert [item.outcome for item in handled] == [HANDLED_OK] * len(pairs)
    assert all(store.sismember(keys.connections(a), b) and store.sismember(keys.connections(b), a) for a, b in pairs)
    # The events' markers, the twenty members' records, the parts' markers, the batch's MULTI/EXEC.
    assert trips == 4


def test_a_batch_of_new_connections_reads_the_pairs_versions_and_follow_settings_in_one_round_trip(
        settings, unique):
    from services.follows import worker as follows_worker
    from shared import store_client

    store = store_client.connect(settings.store_url("follows"))
    store.ping()  # the connection made, not counted
    for script in keys.SCRIPTS:  # as a running worker has them (another test may flush scripts)
        store.script_load(script.source)
    pairs = [(unique(f"ada{i}"), unique(f"grace{i}")) for i in range(10)]

    handled, trips = run_accepted(settings, store, consumer_of(follows_worker, settings, "follows.connections"), "follows", pairs)

    assert [item.outcome for item in handled] == [HANDLED_OK] * len(pairs)
    assert all(store.zscore(keys.following(a), b) is not None and store.zscore(keys.following(b), a) is not None
               for a, b in pairs)
    # The events' markers, the forty reads (both sides' versions and follow settings), the
    # parts' markers, the batch's MULTI/EXEC.
    assert trips == 4


def test_a_new_connection_reaching_the_feed_records_both_sides_in_one_round_trip(settings, unique):
    from services.feed import store as feed_keys, worker as feed_worker
    from shared import store_client

    store = store_client.connect(settings.store_url("feed"))
    store.ping()  # the connection made, not counted
    store.script_load(feed_keys.PAIR_SIDE.source)  # as a running worker has it
    pairs = [(unique(f"ada{i}"), unique(f"grace{i}")) for i in range(10)]

    handled, trips = run_accepted(settings, store, consumer_of(feed_worker, settings, "feed.audience"), "feed", pairs,
                                  extra=feed_worker.resources(settings))

    assert [item.outcome for item in handled] == [HANDLED_OK] * len(pairs)
    assert all(store.sismember(feed_keys.connections(a), b) and store.sismember(feed_keys.connections(b), a)
               for a, b in pairs)
    # The events' markers; for each connection both sides' scripts, then whether each already
    # follows the other (neither does: nothing to backfill); the events' markers set.
    assert trips == 2 + 2 * len(pairs)
