"""The consumer runner's steps, without a broker or a store: reading, the DLQ policy and its
limit, offset commits, the part markers given to scripts."""
from __future__ import annotations

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from shared.bus.consumer import Attempts, Consumer, ConsumerRunner, DlqLimit, Offsets, read, with_part_marker
from shared.events import encode, new_event
from shared.lua import with_marker
from shared.settings import load_settings


def record(offset: int = 0, value: bytes | None = b"{}", partition: int = 0, headers=()) -> ConsumerRecord:
    return ConsumerRecord("t", partition, None, offset, 0, 0, b"k", value, list(headers), None, 2, len(value or b""),
                          -1)


def follow():
    return new_event("follows", "follow.created", {"follower": "ada", "followee": "grace", "reason": "explicit",
                                                   "since": "2026-11-26T10:00:00.000Z", "version": 1})


def on_follow(event, fx):
    raise AssertionError("read does not call handlers")


SPEC = Consumer(name="c", service="follows", topics=("follows.events",), handlers={"follow.created": on_follow})


def test_read_gives_the_event_and_its_handler():
    item = read(record(value=encode(follow())), SPEC)
    assert (item.event.name, item.handler, item.outcome, item.poison) == ("follow.created", on_follow, None, None)


def test_read_marks_an_undecodable_record_as_poison_with_the_reason():
    item = read(record(value=b"{not json"), SPEC)
    assert item.outcome is None and item.poison.startswith("undecodable")


def test_read_skips_an_event_without_a_handler():
    other = Consumer(name="c", service="follows", topics=("follows.events",), handlers={"follow.removed": on_follow})
    assert read(record(value=encode(follow())), other).outcome == "skipped"


def test_read_skips_by_the_type_header_without_decoding():
    item = read(record(value=b"{not json", headers=[("rapport-type", b"rapport.follows.follow.removed.v1")]), SPEC)
    assert item.outcome == "skipped" and item.event is None


def test_read_decodes_a_record_whose_type_header_has_a_handler():
    item = read(record(value=encode(follow()), headers=[("rapport-type", follow().type.encode())]), SPEC)
    assert item.handler is on_follow


def test_a_record_is_retried_until_its_third_failure():
    attempts, first = Attempts(3), record(7)
    assert [attempts.failed(first) for _ in range(3)] == [False, False, True]
    assert not attempts.failing(first)


def test_attempts_of_revoked_partitions_are_forgotten():
    attempts = Attempts(3)
    attempts.failed(record(1, partition=0))
    attempts.failed(record(1, partition=1))
    attempts.forget([TopicPartition("t", 0)])
    assert (attempts.failing(record(1, partition=0)), attempts.failing(record(1, partition=1))) == (False, True)


def test_the_dlq_limit_refuses_the_dead_letter_past_the_consecutive_limit():
    limit = DlqLimit(max_consecutive=2, max_percent=0)
    assert [limit.admit(record(n)) for n in range(2)] == [None, None]
    assert "more than 2 dead letters in a row" in limit.admit(record(2))


def test_a_good_record_resets_the_consecutive_count():
    limit = DlqLimit(max_consecutive=2, max_percent=0)
    limit.admit(record(0)), limit.admit(record(1)), limit.passed(record(2))
    assert limit.admit(record(3)) is None


def test_the_consecutive_limit_counts_per_partition():
    limit = DlqLimit(max_consecutive=1, max_percent=0)
    assert (limit.admit(record(0, partition=0)), limit.admit(record(0, partition=1))) == (None, None)


def test_the_dlq_limit_refuses_past_the_ratio_once_a_tenth_of_the_window_was_read():
    limit = DlqLimit(max_consecutive=0, max_percent=50, window=100)
    for n in range(4):
        limit.passed(record(2 * n)), limit.admit(record(2 * n + 1))
    assert limit.admit(record(9)) is None  # 5 of 9, but only 9 records read
    limit.passed(record(10))
    assert "over 50%" in limit.admit(record(11))  # 6 of 11


class CommitLog:
    def __init__(self, fail: Exception | None = None):
        self.commits, self.fail = [], fail

    def commit(self, offsets):
        if self.fail:
            raise self.fail
        self.commits.append({tp.partition: meta.offset for tp, meta in offsets.items()})


def test_offsets_are_due_only_once_the_interval_has_passed():
    now = [0.0]
    offsets = Offsets(1.0, clock=lambda: now[0])
    offsets.done(record(4))
    now[0] = 0.9
    assert not offsets.due()
    now[0] = 1.0
    assert offsets.due()


def test_commit_sends_the_next_offset_of_each_partition_done():
    offsets, log = Offsets(1.0), CommitLog()
    offsets.done(record(4)), offsets.done(record(5)), offsets.done(record(9, partition=1))
    offsets.commit(log)
    assert log.commits == [{0: 6, 1: 10}] and not offsets.pending


def test_commit_of_revoked_partitions_keeps_the_others_pending():
    offsets, log = Offsets(1.0), CommitLog()
    offsets.done(record(4)), offsets.done(record(9, partition=1))
    offsets.commit(log, {TopicPartition("t", 1)})
    assert log.commits == [{1: 10}] and offsets.pending == {TopicPartition("t", 0): 5}


def test_offsets_that_kafka_did_not_take_stay_pending():
    offsets = Offsets(1.0)
    offsets.done(record(4))
    try:
        offsets.commit(CommitLog(fail=OSError("down")))
    except OSError:
        pass
    assert offsets.pending == {TopicPartition("t", 0): 5}


class PollingConsumer(CommitLog):
    """Returns one record of a type the consumer does not handle on every poll."""

    def __init__(self):
        super().__init__()
        self.offset = 0

    def poll(self, timeout_ms):
        self.offset += 1
        unfollow_type = b"rapport.follows.follow.removed.v1"
        return {TopicPartition("t", 0): [record(self.offset, headers=[("rapport-type", unfollow_type)])]}

    def assignment(self):
        return {TopicPartition("t", 0)}


def test_the_runner_commits_once_per_interval_not_on_every_poll():
    settings = load_settings({}, consumer_commit_interval_ms=60_000)
    runner = ConsumerRunner(SPEC, settings, store=None, outbox=None)
    consumer = PollingConsumer()
    for _ in range(5):
        runner.poll_once(consumer)
    assert consumer.commits == []
    runner.offsets.commit(consumer)  # as on revocation or shutdown
    assert consumer.commits == [{0: 6}]


def keyed(offset: int, key: bytes) -> ConsumerRecord:
    value = encode(follow())
    return ConsumerRecord("t", 0, None, offset, 0, 0, key, value, [], None, 2, len(value), -1)


def test_distinct_keys_is_the_longest_prefix_without_a_repeated_key():
    from shared.bus.consumer import distinct_keys

    records = [keyed(0, b"a"), keyed(1, b"b"), keyed(2, b"a"), keyed(3, b"c")]
    assert [r.offset for r in distinct_keys(records)] == [0, 1]
    assert [r.offset for r in distinct_keys(records[2:])] == [2, 3]
    assert [r.offset for r in distinct_keys([keyed(0, b"a"), keyed(1, b"a")])] == [0]


def test_a_batch_by_key_ends_before_a_key_it_already_holds_and_every_record_is_done_in_order():
    from shared.bus.consumer import HANDLED_OK, Item

    spec = Consumer(name="c", service="follows", topics=("follows.events",), handlers={"follow.created": on_follow},
                    batch_size=10, batch_by_key=True)
    runner = ConsumerRunner(spec, load_settings(), store=None, outbox=None)
    chunks = []

    def process(records):
        chunks.append([r.key for r in records])
        return [Item(r, outcome=HANDLED_OK) for r in records]

    runner.process = process
    keys = [b"a", b"b", b"a", b"c", b"c", b"d"]
    assert runner.process_partition([keyed(i, k) for i, k in enumerate(keys)]) is None
    assert chunks == [[b"a", b"b"], [b"a", b"c"], [b"c", b"d"]]
    assert runner.offsets.pending == {TopicPartition("t", 0): 6}


class Assigned:
    """A consumer whose subscription state holds two partitions, as kafka-python's does."""

    def __init__(self, partitions: dict):
        from types import SimpleNamespace

        from kafka.structs import OffsetAndMetadata

        self._subscription = SimpleNamespace(assignment={
            tp: SimpleNamespace(position=None if position is None else OffsetAndMetadata(position, "", -1),
                                highwater=highwater)
            for tp, (position, highwater) in partitions.items()})


def test_the_lag_of_a_partition_is_its_high_watermark_minus_the_position_and_goes_with_the_partition():
    from prometheus_client import REGISTRY

    spec = Consumer(name="lag-c", service="follows", topics=("follows.events",), handlers={})
    runner = ConsumerRunner(spec, load_settings(), store=None, outbox=None)
    first, second, unknown = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)
    runner.report_lag(Assigned({first: (7, 10), second: (4, 4), unknown: (None, 9)}))

    def lag(tp):
        return REGISTRY.get_sample_value("rapport_consumer_lag", {"consumer": "lag-c", "topic": tp.topic,
                                                                  "partition": str(tp.partition)})
    assert (lag(first), lag(second), lag(unknown)) == (3, 0, None)
    runner.forget_lag([first])
    assert (lag(first), lag(second)) == (None, 0)


class FactoryConsumer:
    """What ``make_consumer`` builds: it keeps the options it was given."""

    def __init__(self, **options):
        self.options = options

    def subscribe(self, topics, listener):
        pass

    def partitions_for_topic(self, topic):
        return set()


def test_a_consumer_fetches_with_its_own_fetch_min_bytes_or_else_the_settings():
    settings = load_settings({}, consumer_fetch_min_bytes=16_384)
    own = Consumer(name="c", service="follows", topics=("follows.events",), handlers={}, fetch_min_bytes=1)
    built = [ConsumerRunner(spec, settings, store=None, outbox=None, consumer_factory=FactoryConsumer).make_consumer()
             for spec in (own, SPEC)]
    assert [c.options["fetch_min_bytes"] for c in built] == [1, 16_384]


def test_the_messaging_projection_fetches_as_soon_as_an_event_arrived():
    from services.messaging.worker import consumers

    [inbox] = [c for c in consumers(load_settings()) if c.name == "messaging.inbox"]
    assert inbox.fetch_min_bytes == 1


def test_a_script_of_a_part_is_given_the_parts_marker_as_its_last_key():
    command = (("EVAL", "return 1", 2, "a:{s1}", "b:{s1}", "x", "y"), {"k": 1})
    assert with_part_marker(command, "m:{s1}", {}) == (
        ("EVAL", with_marker("return 1"), 3, "a:{s1}", "b:{s1}", "m:{s1}", "x", "y"), {"k": 1})


def test_a_script_by_sha_is_given_the_marker_when_its_source_is_known_and_left_as_it_is_otherwise():
    known = ("EVALSHA", "abc", 1, "a:{s1}", "x")
    assert with_part_marker((known, {}), "m:{s1}", {"abc": "return 2"}) == (
        ("EVAL", with_marker("return 2"), 2, "a:{s1}", "m:{s1}", "x"), {})
    assert with_part_marker((known, {}), "m:{s1}", {}) == (known, {})


def test_a_plain_command_of_a_part_is_left_as_it_is():
    assert with_part_marker((("SADD", "a:{s1}", "x"), {}), "m:{s1}", {}) == (("SADD", "a:{s1}", "x"), {})
