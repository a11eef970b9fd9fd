"""Kafka consumers as small chains: decode → validate → dedup → handle → store → commit.

A handler receives the event and an ``Effects``: it reads through ``effects.store`` and
queues its writes on ``effects.tx`` (a MULTI/EXEC pipeline, with ``effects.outbox`` for
events it causes). The runner adds the event's dedup marker to the same transaction and
executes it, then commits the offset: a crash before EXEC redoes the event, a crash
after it finds the marker and skips it. Nothing lost, nothing doubled.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import redis
import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter

from shared.bus.outbox import Outbox
from shared.bus.producer import get_producer
from shared.events import Event, PoisonEvent, UnknownEventType, decode
from shared.logs import get_logger
from shared.settings import Settings

log = get_logger(__name__)

HANDLED = Counter("rapport_events_handled_total", "Events handled", ["consumer", "outcome"])

# After this many failures of a handler on one event (not infrastructure errors), the event
# is poison: to the DLQ, and the consumer goes on.
MAX_HANDLER_ATTEMPTS = 3
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, KafkaError, OSError)


@dataclass
class Effects:
    """What a handler may touch: read the store, queue writes on the transaction."""
    store: redis.Redis
    tx: redis.client.Pipeline
    outbox: Outbox
    settings: Settings
    extra: dict = field(default_factory=dict)  # service resources, e.g. the timeline cache


Handler = Callable[[Event, Effects], None]


@dataclass(frozen=True)
class Consumer:
    """One entry of a service's consumer registry."""
    name: str  # also the consumer group, e.g. "notifications.inbox"
    service: str  # whose store the effects go to
    topics: tuple[str, ...]
    handlers: dict[str, Handler]  # event type name ("follow.created") → handler
    max_poll_records: int = 500
    # > 1: up to this many records of a partition share one dedup read and one MULTI/EXEC
    # (see ConsumerRunner.process_batch). Only for handlers whose reads need not see the
    # writes of the events before them in the same batch.
    batch_size: int = 1

    def handler_for(self, event: Event) -> Handler | None:
        return self.handlers.get(event.name)


class ConsumerRunner:
    """Runs one ``Consumer`` in a poll loop until stopped."""

    def __init__(self, spec: Consumer, settings: Settings, store: redis.Redis, outbox: Outbox,
                 extra: dict | None = None, consumer_factory: Callable[..., KafkaConsumer] = KafkaConsumer):
        self.spec = spec
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.extra = extra or {}
        self.consumer_factory = consumer_factory
        self.group = settings.group(spec.name)
        self._dedup_prefix = f"dedup:{self.group}:"
        self._attempts: dict[tuple[str, int, int], int] = {}

    # -- the chain ------------------------------------------------------------------

    def process(self, record: ConsumerRecord) -> str:
        """Handle one record; return its outcome. Raises only on transient failures."""
        try:
            event = decode(record.value, record.key)
        except UnknownEventType:
            return "skipped"  # a newer producer's type: not ours to judge
        except PoisonEvent as exc:
            self.dead_letter(record, str(exc))
            return "dead_lettered"
        handler = self.spec.handler_for(event)
        if handler is None:
            return "skipped"
        dedup_key = self._dedup_prefix + event.dedup_key
        if self.store.exists(dedup_key):
            return "duplicate"
        structlog.contextvars.bind_contextvars(event_id=event.id, event_type=event.type)
        try:
            tx = self.store.pipeline(transaction=True)
            handler(event, Effects(self.store, tx, self.outbox, self.settings, self.extra))
            tx.set(dedup_key, 1, ex=self.settings.dedup_ttl_seconds)
            tx.execute()
        except TRANSIENT:
            raise
        except Exception as exc:  # a handler bug or an event it cannot apply
            where = (record.topic, record.partition, record.offset)
            self._attempts[where] = self._attempts.get(where, 0) + 1
            if self._attempts[where] < MAX_HANDLER_ATTEMPTS:
                log.warning("handler failed, will retry", error=repr(exc), attempt=self._attempts[where])
                raise RetryLater(exc) from exc
            self._attempts.pop(where, None)
            self.dead_letter(record, f"handler failed {MAX_HANDLER_ATTEMPTS} times: {exc!r}")
            return "dead_lettered"
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "event_type")
        return "handled"

    def process_batch(self, records: list[ConsumerRecord]) -> list[str]:
        """Handle consecutive records of one partition in ONE transaction with their dedup markers.

        Same guarantees as ``process`` (the markers commit with the effects), two round trips
        per batch instead of per record. If a handler fails or a record is poison, nothing of
        the batch is written and ``_BatchFailed`` sends the records through ``process`` one by one.
        """
        outcomes: list[str] = []
        todo: list[tuple[Event, Handler, str]] = []
        for record in records:
            try:
                event = decode(record.value, record.key)
            except UnknownEventType:
                outcomes.append("skipped")
                continue
            except PoisonEvent:
                raise _BatchFailed() from None  # process() dead-letters it, in order
            handler = self.spec.handler_for(event)
            if handler is None:
                outcomes.append("skipped")
                continue
            todo.append((event, handler, self._dedup_prefix + event.dedup_key))
        if not todo:
            return outcomes
        with self.store.pipeline(transaction=False) as pipe:
            for _, _, dedup_key in todo:
                pipe.exists(dedup_key)
            seen_before = pipe.execute()
        tx = self.store.pipeline(transaction=True)
        marked: set[str] = set()
        try:
            for (event, handler, dedup_key), before in zip(todo, seen_before):
                if before or dedup_key in marked:
                    outcomes.append("duplicate")
                    continue
                handler(event, Effects(self.store, tx, self.outbox, self.settings, self.extra))
                tx.set(dedup_key, 1, ex=self.settings.dedup_ttl_seconds)
                marked.add(dedup_key)
                outcomes.append("handled")
            tx.execute()
        except TRANSIENT:
            raise
        except Exception:
            raise _BatchFailed() from None
        finally:
            tx.reset()
        return outcomes

    def dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        """Send ``record`` as received to ``<topic>.dlq`` with the reason in its headers."""
        headers = [
            ("dlq.reason", reason[:1000].encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
            ("dlq.consumer", self.group.encode()),
        ]
        get_producer(self.settings).send(f"{record.topic}.dlq", key=record.key, value=record.value,
                                         headers=headers).get(timeout=10)
        log.warning("event dead-lettered", topic=record.topic, offset=record.offset, reason=reason)

    # -- the loop -------------------------------------------------------------------

    def make_consumer(self) -> KafkaConsumer:
        return self.consumer_factory(
            *[self.settings.topic(t) for t in self.spec.topics],
            bootstrap_servers=self.settings.kafka_bootstrap.split(","),
            group_id=self.group,
            client_id=f"{self.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.spec.max_poll_records,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Poll, handle and commit until ``stop`` is set; survives Kafka and Redis outages."""
        backoff = 0.2
        consumer = None
        while not stop.is_set():
            try:
                if consumer is None:
                    consumer = self.make_consumer()
                self.poll_once(consumer, ready)
                backoff = 0.2
            except RetryLater:
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except TRANSIENT as exc:
                log.warning("consumer waiting", consumer=self.group, error=repr(exc), retry_in=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        if consumer is not None:
            consumer.close(autocommit=False)

    def poll_once(self, consumer: KafkaConsumer, ready: threading.Event | None = None) -> int:
        """One poll: handle each partition's records in order, then commit what was handled."""
        batch = consumer.poll(timeout_ms=500)
        if ready is not None and consumer.assignment():
            ready.set()
        done: dict[TopicPartition, int] = {}
        failure: BaseException | None = None
        for tp, records in batch.items():
            if self.spec.batch_size > 1:
                start = 0
                try:
                    while start < len(records):
                        chunk = records[start:start + self.spec.batch_size]
                        for outcome in self.process_batch(chunk):
                            HANDLED.labels(self.spec.name, outcome).inc()
                        done[tp] = chunk[-1].offset + 1
                        start += len(chunk)
                except _BatchFailed:
                    pass  # from the chunk that failed on, one by one
                except TRANSIENT as exc:
                    consumer.seek(tp, records[start].offset)
                    failure = exc
                    continue
                records = records[start:]
            for record in records:
                try:
                    outcome = self.process(record)
                except (RetryLater, *TRANSIENT) as exc:
                    # Come back to this record on the next poll; the partition's later records wait.
                    consumer.seek(tp, record.offset)
                    failure = exc
                    break
                HANDLED.labels(self.spec.name, outcome).inc()
                done[tp] = record.offset + 1
        if done:
            consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in done.items()})
        if failure is not None:
            raise failure
        return sum(len(r) for r in batch.values())


class _BatchFailed(Exception):
    """A batch could not be handled as one: its records go through ``process`` one by one."""


class RetryLater(Exception):
    """A handler failed on this attempt; the record is retried before it is dead-lettered."""
