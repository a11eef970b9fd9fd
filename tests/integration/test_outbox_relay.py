"""The outbox relay's lease against the real Kafka and Redis: one relay per outbox publishes."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaTimeoutError

from shared.bus.outbox import Outbox, OutboxRelay, relay_until_empty
from shared.bus.producer import make_producer
from shared.settings import REPO_ROOT
from tests.support.infra import eventually, read_topic
from shared import store_client


# A topic of the relay tests' own: the entries they publish are not events, and on the session's
# follows.events the services' consumers would dead-letter them (and, past their DLQ limit, stop).
TOPIC = f"relay-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", autouse=True)
def topic(settings):
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(settings.topic(TOPIC), 6, settings.topic_replication_factor)])
    yield settings.topic(TOPIC)
    admin.delete_topics([settings.topic(TOPIC)])
    admin.close()


@pytest.fixture
def store(settings):
    client = store_client.connect(settings.store_url("follows"))
    yield client
    client.close()


@pytest.fixture
def outbox(settings, store):
    box = Outbox(f"relay-test-{uuid.uuid4().hex[:6]}", settings)
    yield box
    store.delete(box.key, box.lease_key)


@contextlib.contextmanager
def running(relay: OutboxRelay):
    """``relay`` running in a thread, stopped on exit."""
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(10)


def relay(outbox, store, settings, lease_ms: int, **producer):
    return OutboxRelay(outbox, store, lambda: make_producer(settings, **producer), lease_ms=lease_ms)


def test_a_second_relay_does_not_publish_while_the_first_holds_the_lease_and_takes_over_after_it_lapses(
        settings, store, outbox, unique):
    key = unique("relay")
    topic = settings.topic(TOPIC)
    first, second = relay(outbox, store, settings, 1000), relay(outbox, store, settings, 1000)
    assert first._holds_lease()  # and then it dies: it never renews
    for n in range(3):
        store.xadd(outbox.key, {"topic": topic, "key": key, "value": f"entry {n}"})
    with running(second):
        time.sleep(0.6)  # within the first relay's lease
        assert outbox.pending(store) == 3
        eventually(lambda: outbox.pending(store) == 0, timeout=10, message="the second relay took over")
    records = read_topic(settings, TOPIC, lambda rs: len([r for r in rs if r.key == key.encode()]) >= 3,
                         raw=True)
    assert [r.value for r in records if r.key == key.encode()] == [b"entry 0", b"entry 1", b"entry 2"]


class SlowToAcknowledge(KafkaProducer):
    """A real producer whose acknowledgements come only ``delay`` seconds after the first send,
    as when Kafka is slow to answer: ``flush`` times out until then."""

    def __init__(self, delay: float, **config):
        super().__init__(**config)
        self.delay = delay
        self.release_at = None

    def send(self, *args, **kwargs):
        if self.release_at is None:
            self.release_at = time.monotonic() + self.delay
        return super().send(*args, **kwargs)

    def flush(self, timeout=None):
        wait = self.release_at - time.monotonic()
        if timeout is not None and wait > timeout:
            time.sleep(timeout)
            raise KafkaTimeoutError("not acknowledged yet")
        time.sleep(max(wait, 0))
        super().flush(timeout)


def test_the_lease_is_kept_while_kafka_takes_longer_than_the_lease_to_acknowledge(settings, store, outbox, unique):
    key = unique("relay")
    store.xadd(outbox.key, {"topic": settings.topic(TOPIC), "key": key, "value": "entry"})
    # Leases of 2 s renewed every 0.67 s: room for a busy machine's scheduling, three leases' wait.
    holder = OutboxRelay(outbox, store, lambda: SlowToAcknowledge(6.0, bootstrap_servers=settings.kafka_bootstrap.split(","),
                                                                 acks="all"), lease_ms=2000)
    other = relay(outbox, store, settings, 2000)
    assert holder._holds_lease()
    thread = threading.Thread(target=holder.publish_batch, kwargs={"block_ms": 100}, daemon=True)
    started = time.monotonic()
    thread.start()
    taken = []
    while thread.is_alive():
        taken.append(other._holds_lease())
        time.sleep(0.2)
    waited = time.monotonic() - started
    holder._reset_producer()

    assert waited >= 6.0 and taken and not any(taken)  # waited three leases' time, never lost its lease
    assert outbox.pending(store) == 0
    records = read_topic(settings, TOPIC, lambda rs: any(r.key == key.encode() for r in rs), raw=True)
    assert [r.value for r in records if r.key == key.encode()] == [b"entry"]


def test_the_relay_publishes_structured_cloudevents_with_their_type_in_a_header(settings, store, outbox, unique):
    from shared.bus.outbox import relay_until_empty
    from shared.events import encode, new_event

    event = new_event("follows", "follow.created", {"follower": unique("ada"), "followee": "grace",
                                                    "reason": "explicit", "since": "2026-11-26T10:00:00.000Z", "version": 1})
    pipe = store.pipeline(transaction=True)
    outbox.add(pipe, event)
    pipe.execute()
    publisher = relay(outbox, store, settings, 1000)
    relay_until_empty(publisher)
    publisher._reset_producer()

    # A real event: the outbox names its own topic.
    records = read_topic(settings, "follows.events", lambda rs: any(r.value == encode(event) for r in rs), raw=True)
    [record] = [r for r in records if r.value == encode(event)]
    assert dict(record.headers) == {"content-type": b"application/cloudevents+json; charset=UTF-8",
                                    "rapport-type": b"rapport.follows.follow.created.v1"}


def test_entries_written_within_the_relays_linger_leave_in_one_batch(settings, store, outbox, unique):
    key = unique("linger")
    topic = settings.topic(TOPIC)
    lingering = OutboxRelay(outbox, store, lambda: make_producer(settings), lease_ms=10_000, linger_ms=300)
    assert lingering._holds_lease()
    store.xadd(outbox.key, {"topic": topic, "key": key, "value": "first"})
    late = threading.Timer(0.05, lambda: store.xadd(outbox.key, {"topic": topic, "key": key, "value": "second"}))
    late.start()
    try:
        published = lingering.publish_batch(block_ms=100)
    finally:
        late.join()
        lingering._reset_producer()
    assert published == 2 and outbox.pending(store) == 0


# -- a sharded outbox, several relays ------------------------------------------------------

def write_entries(store, outbox, topic: str, key: str, per_stream: int, prefix: str = "") -> list[str]:
    """``per_stream`` entries on every stream of ``outbox`` (64 shards and the untagged one),
    values ``<stream number>/<n>``; returns the values in the order written."""
    values = []
    with store.pipeline(transaction=False) as pipe:
        for n in range(per_stream):
            for i, stream in enumerate(outbox.streams()):
                value = f"{prefix}{i}/{n}"
                pipe.xadd(stream.key, {"topic": topic, "key": key, "value": value})
                values.append(value)
        pipe.execute()
    return values


def drop_streams(store, outbox) -> None:
    for stream in outbox.streams():
        store.delete(stream.key)
        store.delete(stream.lease_key)
    store.delete(outbox.relays_key)


def published(settings, key: str, count: int, timeout: float = 30) -> list[str]:
    records = read_topic(settings, TOPIC,
                         lambda rs: len([r for r in rs if r.key == key.encode()]) >= count, timeout=timeout, raw=True)
    return [r.value.decode() for r in records if r.key == key.encode()]


def in_stream_order(values: list[str]) -> bool:
    """Whether each stream's values came out in the order written (per stream: n ascending)."""
    last: dict[str, int] = {}
    for value in values:
        stream, n = value.rsplit("/", 1)
        if int(n) < last.get(stream, -1):
            return False
        last[stream] = int(n)
    return True


class Relays:
    """Relays of one outbox running in threads, each with its own producer."""

    def __init__(self, outbox, store, settings, count: int, lease_ms: int = 1500):
        self.relays = [OutboxRelay(outbox, store, lambda: make_producer(settings), lease_ms=lease_ms, idle_ms=20)
                       for _ in range(count)]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=r.run, args=(self.stop,), daemon=True) for r in self.relays]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self.relays

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(20)


@pytest.fixture
def sharded(settings, store):
    box = Outbox(f"relay-test-{uuid.uuid4().hex[:6]}", settings)
    yield box
    drop_streams(store, box)


def test_an_outbox_stream_of_a_shard_is_in_the_slot_of_the_shards_keys(settings):
    from shared.slots import slot, tag

    box = Outbox("follows", settings)
    shard = tag("ada", settings.shards)
    assert slot(box.key_for(shard)) == slot(f"follows:{shard}:following:ada") == slot(box.lease_key_for(shard))
    assert len({s.key for s in box.streams()}) == settings.shards + 1


def test_three_relays_publish_the_entries_of_64_shards_each_once_in_each_streams_order(
        settings, store, sharded, unique):
    key = unique("shards")
    topic = settings.topic(TOPIC)
    with Relays(sharded, store, settings, 3, lease_ms=3000) as relays:
        values = write_entries(store, sharded, topic, key, per_stream=5)
        values += write_entries(store, sharded, topic, key, per_stream=5, prefix="late-")  # while they share out
        eventually(lambda: sharded.pending(store) == 0, timeout=30, message="every stream drained")
        shares = eventually(lambda: (lambda held: sum(held) == 65 and max(held) <= 22 and held)(
            [len(r.held) for r in relays]), timeout=20, message="each relay holds its fair share")
    out = published(settings, key, len(values))
    assert sorted(out) == sorted(values)  # each once
    assert in_stream_order(out)
    assert min(shares) >= 1


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "frozen"])
def test_a_relay_killed_or_frozen_mid_batch_loses_its_streams_to_another_and_no_entry_is_lost(
        settings, store, sharded, unique, how):
    key = unique("takeover")
    topic = settings.topic(TOPIC)
    env = {**os.environ, **settings.replace(log_level="WARNING").as_env()}
    # A long linger: the relay spends most of its time inside a batch, read and not yet deleted.
    doomed = subprocess.Popen([sys.executable, "-m", "tests.support.relay_process", sharded.service, "1500", "300"],
                              cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: store.zcard(sharded.relays_key) == 1
                   and all(store.exists(s.lease_key) for s in sharded.streams()), timeout=30,
                   message="the first relay holds every stream")
        values = write_entries(store, sharded, topic, key, per_stream=2)
        time.sleep(0.15)  # inside its batch
        doomed.send_signal(how)
        values += write_entries(store, sharded, topic, key, per_stream=2, prefix="after-")
        with Relays(sharded, store, settings, 1) as [survivor]:
            eventually(lambda: len(survivor.held) == 65, timeout=20, message="the survivor took every stream")
            if how == signal.SIGSTOP:
                doomed.send_signal(signal.SIGCONT)  # wakes mid-batch without its leases
            values += write_entries(store, sharded, topic, key, per_stream=1, prefix="later-")
            eventually(lambda: sharded.pending(store) == 0, timeout=30, message="every stream drained")
            out = published(settings, key, len(values))
    finally:
        doomed.kill()
        doomed.wait(10)
    assert set(out) == set(values)  # nothing lost; what the first had in flight may come twice
    assert in_stream_order([v for v in out if v.startswith("later-")])


def test_a_relay_waiting_on_a_slow_kafka_keeps_its_shards_from_every_other_relay(settings, store, sharded, unique):
    key = unique("slow")
    topic = settings.topic(TOPIC)
    holder = OutboxRelay(sharded, store, lambda: SlowToAcknowledge(3.0, bootstrap_servers=settings.kafka_bootstrap.split(","),
                                                                  acks="all"), lease_ms=1000)
    assert holder._holds_lease() and len(holder.held) == 65
    values = write_entries(store, sharded, topic, key, per_stream=1)
    batch = threading.Thread(target=holder.publish_batch, daemon=True)
    with Relays(sharded, store, settings, 2, lease_ms=1000) as others:
        batch.start()
        held_by_others = []
        while batch.is_alive():
            held_by_others.append(sum(len(r.held) for r in others))
            time.sleep(0.1)
    holder._reset_producer()

    assert len(held_by_others) > 20 and not any(held_by_others)  # three leases' time, none taken
    assert sharded.pending(store) == 0
    assert sorted(published(settings, key, len(values))) == sorted(values)  # published once, by the holder


def test_an_idle_relay_reads_ever_less_often_and_still_publishes_the_next_entry(settings, store, outbox, unique):
    idle = OutboxRelay(outbox, store, lambda: make_producer(settings), idle_ms=20, idle_max_ms=320)
    reads = []
    read = idle._read
    idle._read = lambda *a, **kw: reads.append(time.monotonic()) or read(*a, **kw)
    with running(idle):
        time.sleep(2.0)
        # Every 20 ms it would read about 100 times in 2 s; doubling up to 320 ms, about a dozen.
        assert len(reads) < 25, len(reads)
        key = unique("after-idle")
        store.xadd(outbox.key_for("{s3}"), {"topic": settings.topic(TOPIC), "key": key, "value": "late"})
        eventually(lambda: outbox.pending(store) == 0, timeout=5, message="the entry after a quiet spell")


def test_work_topic_entries_leave_at_once_without_waiting_the_linger_for_later_ones(settings, store, outbox, unique):
    key = unique("work")
    # As feed.fanout's: the test's own topic, whose entries no service consumes.
    lingering = OutboxRelay(outbox, store, lambda: make_producer(settings), lease_ms=10_000, linger_ms=300,
                            work_topics=(TOPIC,))
    assert lingering._holds_lease()
    store.xadd(outbox.key, {"topic": settings.topic(TOPIC), "key": key, "value": "batch 1"})
    late = threading.Timer(0.05, lambda: store.xadd(outbox.key, {"topic": settings.topic(TOPIC), "key": key,
                                                                 "value": "batch 2"}))
    late.start()
    try:
        published = lingering.publish_batch(block_ms=100)
        late.join()
        assert published == 1 and outbox.pending(store) == 1  # the second goes with the next batch
        assert lingering.publish_batch(block_ms=100) == 1
    finally:
        late.join()
        lingering._reset_producer()


def test_a_relay_keeps_reading_at_its_shortest_wait_for_a_while_after_it_published(settings, store, outbox, unique):
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings), idle_ms=20, idle_max_ms=320, awake_ms=1_000)
    reads = []
    read = relay._read
    relay._read = lambda *a, **kw: reads.append(time.monotonic()) or read(*a, **kw)
    with running(relay):
        store.xadd(outbox.key_for("{s5}"), {"topic": settings.topic(TOPIC), "key": unique("awake"), "value": "one"})
        eventually(lambda: outbox.pending(store) == 0, timeout=5, message="the entry")
        published = time.monotonic()
        time.sleep(0.8)
        # Every 20 ms for the second after it: about 40 reads in 0.8 s; doubling at once, about 6.
        assert len([t for t in reads if t > published]) > 20


def test_entries_naming_their_number_in_a_job_go_to_the_partitions_in_turn(settings, store, outbox, unique):
    key = unique("spread")
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings), lease_ms=10_000)
    assert relay._holds_lease()
    for n in range(12):
        store.xadd(outbox.key, {"topic": settings.topic(TOPIC), "key": f"{key}#{n}", "value": str(n), "spread": str(n)})
    try:
        relay_until_empty(relay)
    finally:
        relay._reset_producer()
    records = read_topic(settings, TOPIC, lambda rs: len([r for r in rs if r.key.startswith(key.encode())]) == 12,
                         raw=True)
    assert sorted((int(r.value), r.partition) for r in records if r.key.startswith(key.encode())) == [
        (n, n % 6) for n in range(12)]  # the topic's 6 partitions, two each


def test_an_idle_relay_woken_by_a_writer_reads_at_once_instead_of_at_the_end_of_its_wait(settings, store, outbox,
                                                                                          unique):
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings), idle_ms=10_000, wakeable=True)
    with running(relay):
        time.sleep(1.0)  # its first read found nothing: it waits 10 s
        store.xadd(outbox.key_for("{s7}"), {"topic": settings.topic(TOPIC), "key": unique("woken"), "value": "now"})
        outbox.wake(store)
        eventually(lambda: outbox.pending(store) == 0, timeout=4, message="the entry, relayed on the wake-up")


def test_streams_a_stopping_relay_gives_up_are_taken_by_another_at_once_not_at_its_next_lease_round(
        settings, store, sharded):
    # Leases of 30 s: a relay holding streams takes free ones at its lease rounds, every 10 s.
    stopping = OutboxRelay(sharded, store, lambda: make_producer(settings), lease_ms=30_000, wakeable=True)
    assert stopping._holds_lease(fresh=True) and len(stopping.held) == 65  # alone: every stream
    staying = OutboxRelay(sharded, store, lambda: make_producer(settings), lease_ms=30_000, idle_ms=20,
                          wakeable=True)
    with running(staying):
        eventually(lambda: store.zcard(sharded.relays_key) == 2, timeout=5, message="the second relay's heartbeat")
        stopping._holds_lease(fresh=True)  # two relays: it gives up its extras
        assert len(stopping.held) == 33
        eventually(lambda: len(staying.held) == 32, timeout=5, message="the extras taken")
        time.sleep(0.5)  # the staying relay is between lease rounds, idle
        stopping.release()
        released = time.monotonic()
        eventually(lambda: len(staying.held) == 65, timeout=5, message="the stopped relay's streams taken")
        assert time.monotonic() - released < 2.0  # not at its next round, some 10 s away


def test_an_entry_a_writer_woke_the_relay_for_leaves_without_waiting_the_linger(settings, store, outbox, unique):
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings), idle_ms=10_000, linger_ms=3_000,
                        wakeable=True)
    with running(relay):
        time.sleep(1.0)  # its first read found nothing: it waits for a wake-up
        store.xadd(outbox.key_for("{s9}"), {"topic": settings.topic(TOPIC), "key": unique("waited"), "value": "now"})
        outbox.wake(store)
        # Lingering, it would send after 3 s.
        eventually(lambda: outbox.pending(store) == 0, timeout=2, message="the entry, sent without the linger")


def test_a_relay_joining_gets_its_share_at_once_not_at_the_holders_next_lease_round(settings, store, sharded):
    # Leases of 30 s: a holder's lease rounds, where it gives up its extras, are 10 s apart.
    holder = OutboxRelay(sharded, store, lambda: make_producer(settings), lease_ms=30_000, idle_ms=20,
                         wakeable=True)
    joining = OutboxRelay(sharded, store, lambda: make_producer(settings), lease_ms=30_000, idle_ms=20,
                          wakeable=True)
    with running(holder):
        eventually(lambda: len(holder.held) == 65, timeout=5, message="the first relay holding every stream")
        time.sleep(0.5)  # between its lease rounds
        with running(joining):
            joined = time.monotonic()
            eventually(lambda: len(joining.held) == 32 and len(holder.held) == 33, timeout=5,
                       message="the streams shared")
            assert time.monotonic() - joined < 3.0
