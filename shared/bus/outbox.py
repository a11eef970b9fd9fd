"""The transactional outbox and its relay.

A service stores a state change and the event it causes in one Redis transaction: the
event goes onto the service's outbox stream in the same MULTI/EXEC (``Outbox.add``) or
Lua script (``Outbox.xadd_args``). The relay publishes the stream to Kafka in order and
deletes an entry only after Kafka acknowledged it, so an HTTP write that answered 2xx
reaches Kafka even when Kafka was down at the time. A crash between the acknowledgement
and the delete publishes an entry twice; consumers deduplicate by ``source`` + ``id``.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import time
import uuid
from typing import Callable, Iterator

import orjson
import redis
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import Counter

from shared.events import Event, encode
from shared.events.catalogue import BY_TYPE
from shared.logs import get_logger
from shared.settings import Settings

log = get_logger(__name__)

RELAYED = Counter("rapport_outbox_relayed_total", "Events the relay published to Kafka", ["service"])


# Set while an idempotent request runs (shared/http/idempotency.py): ``mark(pipe, events)`` adds
# to the write's own transaction the record that the request's write happened.
_WRITE_MARK: contextvars.ContextVar[Callable | None] = contextvars.ContextVar("outbox_write_mark", default=None)


@contextlib.contextmanager
def marking_writes(mark: Callable) -> Iterator[None]:
    """Within this block, every ``Outbox.add`` also queues ``mark(pipe, events)`` on its pipeline."""
    token = _WRITE_MARK.set(mark)
    try:
        yield
    finally:
        _WRITE_MARK.reset(token)


class Outbox:
    """A service's outbox stream in its own store."""

    def __init__(self, service: str, settings: Settings):
        self.service = service
        self.settings = settings
        ns = f"{settings.namespace}:" if settings.namespace else ""
        self.key = f"outbox:{ns}{service}"
        self.lease_key = f"{self.key}:relay-lease"

    def fields(self, event: Event) -> dict[str, str]:
        topic = BY_TYPE[event.type].topic
        return {"topic": self.settings.topic(topic), "key": event.key, "value": encode(event).decode()}

    def key_for(self, tag: str) -> str:
        """The outbox stream for a write in the shard ``tag`` (``shared.slots``): pass it in the
        KEYS of the write's script. For now every shard shares the service's one stream."""
        return self.key

    def add(self, pipe: redis.client.Pipeline, *events: Event, tag: str | None = None) -> None:
        """Queue ``events`` on ``pipe`` (a MULTI/EXEC pipeline carrying the state change), on the
        outbox stream of the write's shard ``tag``."""
        key = self.key if tag is None else self.key_for(tag)
        for event in events:
            pipe.xadd(key, self.fields(event))
        mark = _WRITE_MARK.get()
        if mark is not None and events:
            mark(pipe, events)

    def xadd_args(self, event: Event) -> list[str]:
        """Flat field/value list for ``redis.call('XADD', key, '*', unpack(args))`` in a Lua script."""
        return [part for pair in self.fields(event).items() for part in pair]

    def pending(self, client: redis.Redis) -> int:
        return client.xlen(self.key)


CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"


def structured_headers(value: str) -> list[tuple[str, bytes]]:
    """Kafka headers of a CloudEvents structured-mode record, with ``rapport-type`` so that a
    consumer can skip a type it does not handle without parsing the JSON."""
    headers = [("content-type", CONTENT_TYPE)]
    try:
        type_ = orjson.loads(value).get("type")
    except (ValueError, AttributeError):
        type_ = None
    if isinstance(type_, str):
        headers.append(("rapport-type", type_.encode()))
    return headers


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""


class LeaseLost(Exception):
    """The relay could not renew its lease while Kafka had its batch: it gives the batch up."""


class OutboxRelay:
    """Publishes one outbox stream to Kafka, in order, at least once.

    Only the holder of a lease in Redis publishes, and it renews the lease while it waits for
    Kafka's acknowledgements, so starting a second worker for a service never reorders its
    events. A holder that cannot renew (Redis unreachable, the process frozen for a lease)
    aborts its batch without deleting it; what it had in flight may then land besides the
    next holder's copy (a duplicate that consumers drop by ``source`` + ``id``).
    """

    def __init__(self, outbox: Outbox, store: redis.Redis, producer_factory: Callable[[], KafkaProducer],
                 batch_size: int = 1000, lease_ms: int = 10_000, ack_timeout: float = 35.0, linger_ms: int = 0):
        self.outbox = outbox
        self.store = store
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.lease_ms = lease_ms
        self.ack_timeout = ack_timeout  # above the producer's delivery timeout: every future is done by then
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.linger_ms = linger_ms  # after the first entries, wait this long for more to join the batch
        self._renew = store.register_script(_RENEW)
        self._producer: KafkaProducer | None = None
        self._renewed_at = float("-inf")

    def _holds_lease(self, fresh: bool = False) -> bool:
        """Whether this relay holds the lease (taking or renewing it). Renewed at most every third
        of the lease unless ``fresh``: held, it cannot lapse in between."""
        now = time.monotonic()
        if not fresh and now - self._renewed_at < self.lease_ms / 3000:
            return True
        held = bool(self._renew(keys=[self.outbox.lease_key], args=[self.owner, self.lease_ms]))
        self._renewed_at = now if held else float("-inf")
        return held

    def publish_batch(self, block_ms: int = 1000) -> int:
        """Publish up to ``batch_size`` entries; return how many Kafka acknowledged (and were deleted)."""
        # Every entry still in the stream is unpublished: read from the start, blocking when empty.
        reply = self.store.xread({self.outbox.key: "0-0"}, count=self.batch_size, block=block_ms)
        if not reply:
            return 0
        entries = reply[0][1]
        if self.linger_ms and len(entries) < self.batch_size:
            # Under load the next writes are a few ms behind: one batch (one flush, one XDEL)
            # for all of them instead of one each.
            time.sleep(self.linger_ms / 1000)
            more = self.store.xread({self.outbox.key: "0-0"}, count=self.batch_size)
            entries = more[0][1] if more else entries
        if self._producer is None:
            self._producer = self.producer_factory()
        futures = [
            self._producer.send(f["topic"], key=f["key"].encode() if f["key"] else None, value=f["value"].encode(),
                                headers=structured_headers(f["value"]))
            for _, f in entries
        ]
        self._await_acks()
        acked = []
        for (entry_id, _), future in zip(entries, futures):
            # Delete only the acknowledged prefix: what failed is retried before what followed it.
            if not future.succeeded():
                break
            acked.append(entry_id)
        if acked:
            self.store.xdel(self.outbox.key, *acked)
            RELAYED.labels(self.outbox.service).inc(len(acked))
        if len(acked) < len(entries):
            failed = futures[len(acked)]
            raise KafkaError(f"publish failed: {failed.exception if failed.is_done else 'timed out'}")
        return len(acked)

    def _await_acks(self) -> None:
        """Wait for Kafka to answer for every record sent, renewing the lease every third of it."""
        deadline = time.monotonic() + self.ack_timeout
        while True:
            try:
                self._producer.flush(timeout=min(self.lease_ms / 3000, max(deadline - time.monotonic(), 0.01)))
                return
            except KafkaTimeoutError:
                if time.monotonic() >= deadline:
                    return  # the futures not done count as failed
            if not self._holds_lease(fresh=True):
                raise LeaseLost(f"lease of {self.outbox.key} lost while waiting for Kafka")

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; survive Kafka and Redis outages."""
        backoff = 0.2
        while not stop.is_set():
            try:
                if not self._holds_lease():
                    stop.wait(self.lease_ms / 4000)
                    continue
                self.publish_batch()
                backoff = 0.2
            except (KafkaError, redis.RedisError, OSError, LeaseLost) as exc:
                log.warning("outbox relay waiting", outbox=self.outbox.key, error=repr(exc), retry_in=backoff)
                # Lost lease: drop what is not sent yet, the next holder publishes it.
                self._reset_producer(timeout=0 if isinstance(exc, LeaseLost) else 2)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._reset_producer()

    def _reset_producer(self, timeout: float = 2) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=timeout)
            except Exception:  # closing a broken producer must not stop the relay
                pass
            self._producer = None


def relay_until_empty(relay: OutboxRelay, timeout: float = 30.0) -> None:
    """Publish everything currently in the outbox (tests and benchmarks)."""
    deadline = time.monotonic() + timeout
    while relay.outbox.pending(relay.store):
        if time.monotonic() > deadline:
            raise TimeoutError(f"outbox {relay.outbox.key} not drained in {timeout}s")
        relay.publish_batch(block_ms=100)
