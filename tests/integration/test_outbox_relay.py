"""The outbox relay's lease against the real Kafka and Redis: one relay per outbox publishes."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.producer import make_producer
from tests.support.infra import eventually, read_topic
from shared import store_client


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


def relay(outbox, store, settings, lease_ms: int, **producer):
    return OutboxRelay(outbox, store, lambda: make_producer(settings, **producer), lease_ms=lease_ms)


def test_a_second_relay_does_not_publish_while_the_first_holds_the_lease_and_takes_over_after_it_lapses(
        settings, store, outbox, unique):
    key = unique("relay")
    topic = settings.topic("follows.events")
    first, second = relay(outbox, store, settings, 1000), relay(outbox, store, settings, 1000)
    assert first._holds_lease()  # and then it dies: it never renews
    for n in range(3):
        store.xadd(outbox.key, {"topic": topic, "key": key, "value": f"entry {n}"})
    stop = threading.Event()
    thread = threading.Thread(target=second.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.6)  # within the first relay's lease
        assert outbox.pending(store) == 3
        eventually(lambda: outbox.pending(store) == 0, timeout=10, message="the second relay took over")
    finally:
        stop.set()
        thread.join(10)
    records = read_topic(settings, "follows.events", lambda rs: len([r for r in rs if r.key == key.encode()]) >= 3,
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
    store.xadd(outbox.key, {"topic": settings.topic("follows.events"), "key": key, "value": "entry"})
    holder = OutboxRelay(outbox, store, lambda: SlowToAcknowledge(3.0, bootstrap_servers=settings.kafka_bootstrap.split(","),
                                                                 acks="all"), lease_ms=1000)
    other = relay(outbox, store, settings, 1000)
    assert holder._holds_lease()
    thread = threading.Thread(target=holder.publish_batch, kwargs={"block_ms": 100}, daemon=True)
    thread.start()
    taken = []
    while thread.is_alive():
        taken.append(other._holds_lease())
        time.sleep(0.2)
    holder._reset_producer()

    assert len(taken) > 10 and not any(taken)  # waited three leases' time, never lost its lease
    assert outbox.pending(store) == 0
    records = read_topic(settings, "follows.events", lambda rs: any(r.key == key.encode() for r in rs), raw=True)
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

    records = read_topic(settings, "follows.events", lambda rs: any(r.value == encode(event) for r in rs), raw=True)
    [record] = [r for r in records if r.value == encode(event)]
    assert dict(record.headers) == {"content-type": b"application/cloudevents+json; charset=UTF-8",
                                    "rapport-type": b"rapport.follows.follow.created.v1"}


def test_entries_written_within_the_relays_linger_leave_in_one_batch(settings, store, outbox, unique):
    key = unique("linger")
    topic = settings.topic("follows.events")
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
