"""The consumer runner against the real Kafka and Redis: errors inside a handler's
transaction, retries, the DLQ and its limit, commits across a rebalance."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from shared.bus.consumer import MAX_HANDLER_ATTEMPTS, Consumer, ConsumerRunner
from shared.bus.outbox import Outbox
from shared.events import encode, new_event
from shared.lua import LuaScript
from shared.slots import shard_tag, slot
from tests.support.infra import eventually, read_topic
from shared import store_client

# A handler's script that raises on a value it does not expect, as a store script does when an
# event carries a field it cannot apply.
_RECORD = """
if string.find(ARGV[1], '..', 1, true) then
  return redis.error_reply('unexpected value ' .. ARGV[1])
end
if ARGV[2] == 'flaky' and redis.call('INCR', KEYS[2]) < 2 then
  return redis.error_reply('fails on its first attempt')
end
return redis.call('SADD', KEYS[1], ARGV[1])
"""


@pytest.fixture
def store(settings):
    client = store_client.connect(settings.store_url("follows"))
    yield client
    client.close()


@pytest.fixture
def producer(settings):
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    yield producer
    producer.close()


class Recorder:
    """A consumer whose handler adds each follower of its own test to a set, through a script."""

    def __init__(self, store: redis.Redis, tag: str):
        self.tag = tag
        self.key = f"test:handled:{{{tag}}}"
        self.script = store.register_script(_RECORD)

    def on_follow(self, event, fx) -> None:
        follower = event.data["follower"]
        if not follower.startswith(self.tag):
            return  # another test's event on the shared topic
        self.script(keys=[self.key, f"test:tries:{{{self.tag}}}:{event.id}"],
                    args=[follower, event.data["followee"]], client=fx.tx)

    def spec(self, batch_size: int = 1) -> Consumer:
        return Consumer(name=f"test.recorder-{uuid.uuid4().hex[:8]}", service="follows",
                        topics=("follows.events",), handlers={"follow.created": self.on_follow},
                        batch_size=batch_size)


def follow_event(follower: str, followee: str = "grace"):
    # The schema allows the odd character; only the handler's script objects to it.
    return new_event("follows", "follow.created", {"follower": follower, "followee": followee,
                                                   "reason": "explicit", "since": "2026-11-26T10:00:00.000Z",
                                                   "version": 1})


def send(settings, producer, key: str, *events) -> None:
    for event in events:
        producer.send(settings.topic("follows.events"), key=key.encode(), value=encode(event))
    producer.flush(10)


class Running:
    """A ConsumerRunner in a thread, stopped on exit."""

    def __init__(self, spec, settings, store, per_slot=None):
        self.runner = ConsumerRunner(spec, settings, store, Outbox(f"test-{uuid.uuid4().hex[:6]}", settings),
                                     per_slot=per_slot)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.runner.run, args=(self.stop, self.ready), daemon=True)

    def __enter__(self) -> ConsumerRunner:
        self.thread.start()
        return self.runner

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(20)
        assert not self.thread.is_alive()


def marker(settings, spec, event, tag: str) -> str:
    """The marker of ``event``'s part in the slot of ``{tag}`` (where the recorder's keys are)."""
    return f"dedup:{settings.group(spec.name)}:{{{tag}}}:{event.dedup_key}"


def dead_letters(settings, spec, key: str, count: int) -> list:
    """The records ``spec``'s consumer dead-lettered under ``key`` (the session's workers read the topic too)."""
    def ours(records):
        return [r for r in records if r.key == key.encode()
                and dict(r.headers).get("dlq.consumer") == settings.group(spec.name).encode()]
    return ours(read_topic(settings, "follows.events.dlq", lambda recs: len(ours(recs)) >= count, raw=True))


def test_an_event_whose_script_fails_keeps_no_marker_and_goes_to_the_dlq_with_the_reason(
        settings, store, producer, unique):
    tag = unique("t")
    recorder = Recorder(store, tag)
    spec = recorder.spec()
    bad, good = follow_event(f"{tag}-odd..x"), follow_event(f"{tag}-ada")
    send(settings, producer, tag, bad, good)

    with Running(spec, settings, store):
        eventually(lambda: store.sismember(recorder.key, f"{tag}-ada"), timeout=30, message="the next event handled")
        [dead] = dead_letters(settings, spec, tag, 1)

    assert store.smembers(recorder.key) == {f"{tag}-ada"}
    assert not store.exists(marker(settings, spec, bad, tag))
    assert store.exists(marker(settings, spec, good, tag))
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq.reason"].startswith(f"handler failed {MAX_HANDLER_ATTEMPTS} times")
    assert f"unexpected value {tag}-odd..x" in headers["dlq.reason"]
    assert dead.value == encode(bad)


@pytest.mark.parametrize("per_slot", [True, False], ids=["per_slot", "per_batch"])
def test_an_event_whose_script_fails_goes_to_the_dlq_when_its_markers_outlive_the_exec(
        per_slot, settings, store, producer, unique):
    # The runner's removal of the failed event's markers, the round trip after EXEC, fails
    # once, as if the worker died in between: the markers written in the EXEC must not let
    # the retry take the event for done.
    tag = unique("t")
    recorder = Recorder(store, tag)
    spec = recorder.spec()
    bad, good = follow_event(f"{tag}-odd..x"), follow_event(f"{tag}-ada")
    send(settings, producer, tag, bad, good)

    running = Running(spec, settings, store, per_slot)
    forget, lost = running.runner.dedup.forget, []

    def forget_lost_once(keys):
        if keys and not lost:
            lost.append(list(keys))
            raise redis.ConnectionError("the connection dropped after EXEC")
        forget(keys)

    running.runner.dedup.forget = forget_lost_once
    with running:
        [dead] = dead_letters(settings, spec, tag, 1)
        eventually(lambda: store.sismember(recorder.key, f"{tag}-ada"), timeout=30, message="the next event handled")

    assert lost == [[marker(settings, spec, bad, tag), f"dedup:{settings.group(spec.name)}:{bad.dedup_key}"]]
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq.reason"].startswith(f"handler failed {MAX_HANDLER_ATTEMPTS} times")
    assert f"unexpected value {tag}-odd..x" in headers["dlq.reason"]
    assert dead.value == encode(bad)
    assert store.smembers(recorder.key) == {f"{tag}-ada"}


def test_an_event_whose_script_fails_once_is_handled_on_its_retry(settings, store, producer, unique):
    tag = unique("t")
    recorder = Recorder(store, tag)
    spec = recorder.spec()
    flaky = follow_event(f"{tag}-ada", followee="flaky")
    send(settings, producer, tag, flaky)

    with Running(spec, settings, store):
        eventually(lambda: store.sismember(recorder.key, f"{tag}-ada"), timeout=30, message="the retried event")

    assert store.exists(marker(settings, spec, flaky, tag))


def test_a_batch_with_a_failing_event_handles_the_others_and_dead_letters_only_that_one(
        settings, store, producer, unique):
    tag = unique("t")
    recorder = Recorder(store, tag)
    spec = recorder.spec(batch_size=50)
    events = [follow_event(f"{tag}-a"), follow_event(f"{tag}-b..x"), follow_event(f"{tag}-c")]
    send(settings, producer, tag, *events)

    with Running(spec, settings, store):
        eventually(lambda: store.scard(recorder.key) == 2, timeout=30, message="the two good events")
        [dead] = dead_letters(settings, spec, tag, 1)

    assert store.smembers(recorder.key) == {f"{tag}-a", f"{tag}-c"}
    assert [store.exists(marker(settings, spec, e, tag)) for e in events] == [1, 0, 1]
    assert dead.value == encode(events[1])
    assert "unexpected value" in dict(dead.headers)["dlq.reason"].decode()


def committed(settings, group: str, partition: int) -> int | None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=group,
                             enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(settings.topic("follows.events"), partition))
    finally:
        consumer.close()


def test_too_many_dead_letters_in_a_row_stop_the_consumer_before_the_next_one(settings, store, producer, unique):
    from shared.bus.consumer import HALTED

    tag = unique("t")
    recorder = Recorder(store, tag)
    spec = recorder.spec()
    limited = settings.replace(dlq_max_consecutive=2)
    for n in range(4):
        producer.send(settings.topic("follows.events"), key=tag.encode(), value=b"{not json %d" % n)
    send(settings, producer, tag, follow_event(f"{tag}-ada"))

    running = Running(spec, limited, store)
    with running as runner:
        eventually(lambda: runner.halted, timeout=30, message="the consumer stopped")
        dead = dead_letters(settings, spec, tag, 2)
        assert HALTED.labels(spec.name)._value.get() == 1

    assert "more than 2 dead letters in a row" in runner.halted
    assert [r.value for r in dead] == [b"{not json 0", b"{not json 1"]
    assert not store.exists(recorder.key)  # nothing past the limit was handled
    partition, last = int(dict(dead[-1].headers)["dlq.partition"]), int(dict(dead[-1].headers)["dlq.offset"])
    assert committed(settings, settings.group(spec.name), partition) == last + 1


def test_a_consumer_joining_the_group_mid_stream_loses_and_doubles_no_event(settings, store, producer, unique):
    from shared.bus.consumer import HANDLED

    tag = unique("t")
    count_key, seen_key = f"test:count:{{{tag}}}", f"test:seen:{{{tag}}}"

    def on_follow(event, fx):
        if event.data["follower"].startswith(tag):
            fx.tx.incr(count_key)
            fx.tx.sadd(seen_key, event.data["follower"])

    # A topic of its own: duplicates of other tests' events on the shared topics would count.
    topic = f"rebalance-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(settings.topic(topic), 6, 1)])
    admin.close()
    spec = Consumer(name=f"test.rebalance-{uuid.uuid4().hex[:8]}", service="follows", topics=(topic,),
                    handlers={"follow.created": on_follow})
    followers = [f"{tag}-{n}" for n in range(600)]

    def publish():
        for start in range(0, len(followers), 20):
            for follower in followers[start:start + 20]:
                event = follow_event(follower)
                producer.send(settings.topic(topic), key=event.key.encode(), value=encode(event))
            producer.flush(10)
            time.sleep(0.1)

    publisher = threading.Thread(target=publish, daemon=True)
    with Running(spec, settings, store):
        publisher.start()  # 600 events over 3 s
        eventually(lambda: store.scard(seen_key) >= 60, timeout=30, message="the first consumer at work")
        joining = Running(spec, settings, store)
        with joining:
            assert joining.ready.wait(60), "the second consumer got no partitions"
            publisher.join(60)
            eventually(lambda: store.scard(seen_key) == 600, timeout=60, message="every event handled")
            time.sleep(1.5)  # any re-read after the rebalance would show up by now

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    admin.delete_topics([settings.topic(topic)])
    admin.close()
    assert int(store.get(count_key)) == 600
    assert HANDLED.labels(spec.name, settings.topic(topic), "duplicate")._value.get() == 0


# -- one transaction per hash slot -----------------------------------------------------------

# Fails (on the part of the slot it runs in) until it has been tried ``A.succeed_on`` times.
_FLAKY_ADD = LuaScript("test_flaky_add", keys=("members", "tries"), args=("member", "succeed_on"), source="""
if redis.call('INCR', K.tries) < tonumber(A.succeed_on) then
  return redis.error_reply('not this time')
end
return redis.call('SADD', K.members, A.member)
""")


class TwoSlots:
    """A handler writing each event in two shards: a count in one (not idempotent, so a second
    application shows), a script in the other that fails ``failures`` times."""

    def __init__(self, tag: str, failures: int):
        self.tag, self.failures = tag, failures
        self.here, self.there = shard_tag(3), shard_tag(40)
        self.count = f"test:{self.here}:count:{tag}"
        self.members = f"test:{self.there}:members:{tag}"

    def on_follow(self, event, fx) -> None:
        follower = event.data["follower"]
        if not follower.startswith(self.tag):
            return
        fx.tx.shard(self.here).incr(self.count)
        _FLAKY_ADD(fx.store, keys={"members": self.members, "tries": f"test:{self.there}:tries:{event.id}"},
                   member=follower, succeed_on=self.failures + 1, pipe=fx.tx.shard(self.there))

    def spec(self) -> Consumer:
        return Consumer(name=f"test.slots-{uuid.uuid4().hex[:8]}", service="follows", topics=("follows.events",),
                        handlers={"follow.created": self.on_follow})


def two_slots(unique, failures: int) -> tuple[str, TwoSlots, Consumer, object]:
    """A test's tag, its two-slot handler failing ``failures`` times, that handler's consumer, and
    the follow event it handles."""
    tag = unique("t")
    handler = TwoSlots(tag, failures=failures)
    return tag, handler, handler.spec(), follow_event(f"{tag}-ada")


# Both ways the runner commits: one MULTI/EXEC per slot (a cluster's), one per batch (a single node's).
PER_SLOT_OR_PER_BATCH = pytest.mark.parametrize("per_slot", [True, False], ids=["per_slot", "per_batch"])


def slot_marker(settings, spec, event, tag: str) -> str:
    return f"dedup:{settings.group(spec.name)}:{tag}:{event.dedup_key}"


@PER_SLOT_OR_PER_BATCH
def test_an_event_writing_in_two_slots_commits_each_with_a_marker_in_that_slot(
        per_slot, settings, store, producer, unique):
    tag, handler, spec, event = two_slots(unique, failures=0)
    send(settings, producer, tag, event)

    with Running(spec, settings, store, per_slot):
        eventually(lambda: store.sismember(handler.members, f"{tag}-ada"), timeout=30, message="the event handled")

    markers = [slot_marker(settings, spec, event, t) for t in (handler.here, handler.there)]
    assert slot(handler.here) != slot(handler.there)
    assert [slot(m) for m in markers] == [slot(handler.count), slot(handler.members)]
    assert all(store.exists(m) for m in markers)
    assert store.get(handler.count) == "1"


@PER_SLOT_OR_PER_BATCH
def test_a_part_failing_in_one_slot_is_retried_alone_and_the_other_slots_part_is_applied_once(
        per_slot, settings, store, producer, unique):
    tag, handler, spec, event = two_slots(unique, failures=1)
    send(settings, producer, tag, event)

    with Running(spec, settings, store, per_slot):
        eventually(lambda: store.sismember(handler.members, f"{tag}-ada"), timeout=30, message="the retried part")
        time.sleep(0.5)

    assert store.get(handler.count) == "1"  # the first attempt's part, not applied again
    assert store.exists(slot_marker(settings, spec, event, handler.there))
    assert store.exists(marker_of_event(settings, spec, event))


def marker_of_event(settings, spec, event) -> str:
    return f"dedup:{settings.group(spec.name)}:{event.dedup_key}"


@PER_SLOT_OR_PER_BATCH
def test_an_event_failing_in_one_slot_goes_to_the_dlq_with_the_other_slots_part_applied_once(
        per_slot, settings, store, producer, unique):
    tag, handler, spec, event = two_slots(unique, failures=MAX_HANDLER_ATTEMPTS)
    send(settings, producer, tag, event)

    with Running(spec, settings, store, per_slot):
        [dead] = dead_letters(settings, spec, tag, 1)

    assert "not this time" in dict(dead.headers)["dlq.reason"].decode()
    assert store.get(handler.count) == "1"
    assert store.exists(slot_marker(settings, spec, event, handler.here))
    assert not store.exists(slot_marker(settings, spec, event, handler.there))
    assert not store.exists(marker_of_event(settings, spec, event))
    assert not store.exists(handler.members)


@PER_SLOT_OR_PER_BATCH
def test_an_event_delivered_again_whose_marker_names_a_part_not_done_applies_only_that_part(
        per_slot, settings, store, producer, unique):
    # As a worker killed between two nodes' round trips leaves it: the event's marker written,
    # one slot's part not committed.
    tag, handler, spec, event = two_slots(unique, failures=0)

    with Running(spec, settings, store, per_slot):
        send(settings, producer, tag, event)
        eventually(lambda: store.sismember(handler.members, f"{tag}-ada"), timeout=30, message="the event handled")
        store.delete(slot_marker(settings, spec, event, handler.there), handler.members)
        send(settings, producer, tag, event)
        eventually(lambda: store.sismember(handler.members, f"{tag}-ada"), timeout=30, message="the missing part")

    assert store.get(handler.count) == "1"
    assert store.get(slot_marker(settings, spec, event, handler.there)) == "1"
    assert sorted(json.loads(store.get(marker_of_event(settings, spec, event)))) == sorted([handler.here, handler.there])


def test_a_handler_asking_to_wake_the_relays_publishes_a_wake_up_once_its_writes_are_committed(
        settings, store, producer, unique):
    tag = unique("w")
    key = f"test:woken:{{{tag}}}"

    def on_follow(event, fx) -> None:
        if event.data["follower"].startswith(tag):
            fx.tx.shard(f"{{{tag}}}").sadd(key, event.data["follower"])
            fx.wake_relays()

    spec = Consumer(name=f"test.waking-{uuid.uuid4().hex[:8]}", service="follows", topics=("follows.events",),
                    handlers={"follow.created": on_follow})
    with Running(spec, settings, store) as runner:
        wakeups = store.pubsub(ignore_subscribe_messages=True)
        wakeups.subscribe(runner.outbox.wake_channel)
        try:
            eventually(lambda: wakeups.get_message(timeout=0) is None and wakeups.subscribed, timeout=5)
            send(settings, producer, tag, follow_event(f"{tag}-ada"))
            deadline = time.monotonic() + 30
            message = None
            while message is None and time.monotonic() < deadline:
                message = wakeups.get_message(timeout=1)
            assert message is not None, "no wake-up"
            assert store.sismember(key, f"{tag}-ada")  # committed before the wake-up
        finally:
            wakeups.close()
