"""The transactional outbox and its relay.

A service stores a state change and the event it causes in one Redis transaction: the
event goes onto the outbox stream of the write's shard (``Outbox.key_for(tag)``, in the
slot of the write's keys) in the same MULTI/EXEC (``Outbox.add``) or Lua script
(``Outbox.xadd_args``). The relays publish each stream to Kafka in order and delete an
entry only after Kafka acknowledged it, so an HTTP write that answered 2xx reaches Kafka
even when Kafka was down at the time. A crash between the acknowledgement and the delete
publishes an entry twice; consumers deduplicate by ``source`` + ``id``.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterator

import orjson
import redis
from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import Counter, Gauge

from shared.bus.topics import WORK_TOPICS
from shared.bus.transactions import node_of
from shared.events import Event, encode
from shared.events.catalogue import BY_TYPE
from shared.logs import get_logger
from shared.lua import LuaScript
from shared.settings import Settings
from shared.slots import all_tags

log = get_logger(__name__)

RELAYED = Counter("rapport_outbox_relayed_total", "Events the relay published to Kafka", ["service"])
# Each relay counts the streams it holds (they are disjoint): a service's depth is the sum over
# its workers.
DEPTH = Gauge("rapport_outbox_depth", "Entries not yet published in the outbox streams this relay holds, "
              "as of its last lease round", ["service"])


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


@dataclass(frozen=True)
class Stream:
    """One outbox stream and the key of the lease that lets one relay at a time publish it,
    both in one hash slot (the shard's)."""
    key: str
    lease_key: str


class Outbox:
    """A service's outbox: one stream per shard, in the shard's slot, beside the write's keys.

    ``key`` is the stream of the layout before shards, untagged: writes that name no shard still
    go there, and the relays keep covering it, so nothing in it is stranded.
    """

    def __init__(self, service: str, settings: Settings):
        self.service = service
        self.settings = settings
        ns = f"{settings.namespace}:" if settings.namespace else ""
        self.key = f"outbox:{ns}{service}"
        self.lease_key = f"{self.key}:relay-lease"
        # The service's live relays (owner → last heartbeat, in Redis' own clock): each takes
        # its fair share of the streams.
        self.relays_key = f"{self.key}:relays"
        # The channel on which writers whose events someone waits for wake the idle relays.
        self.wake_channel = f"{self.key}:wake"

    def fields(self, event: Event) -> dict[str, str]:
        """The entry of ``event``: its topic, key and value, and for a work event (``EventType.spread``)
        its number in its job, which picks its partition."""
        etype = BY_TYPE[event.type]
        fields = {"topic": self.settings.topic(etype.topic), "key": event.key, "value": encode(event).decode()}
        if etype.spread is not None:
            fields["spread"] = str(etype.spread(event.data))
        return fields

    def key_for(self, tag: str) -> str:
        """The outbox stream for a write in the shard ``tag`` (``shared.slots``), e.g.
        ``outbox:follows:{s17}``: pass it in the KEYS of the write's script."""
        return f"{self.key}:{tag}"

    def lease_key_for(self, tag: str) -> str:
        return f"{self.key}:{tag}:relay-lease"

    def streams(self) -> list[Stream]:
        """Every stream the relays must cover: the untagged one, then each shard's."""
        return [Stream(self.key, self.lease_key)] + [
            Stream(self.key_for(t), self.lease_key_for(t)) for t in all_tags(self.settings.shards)]

    def add(self, pipe: redis.client.Pipeline, *events: Event, tag: str | None = None) -> None:
        """Queue ``events`` on ``pipe`` (a MULTI/EXEC pipeline carrying the state change), on the
        outbox stream of the write's shard ``tag`` (untagged: the stream of the old layout)."""
        key = self.key if tag is None else self.key_for(tag)
        for event in events:
            pipe.xadd(key, self.fields(event))
        mark = _WRITE_MARK.get()
        if mark is not None and events:
            mark(pipe, events)

    def xadd_args(self, event: Event) -> list[str]:
        """Flat field/value list for ``redis.call('XADD', key, '*', unpack(args))`` in a Lua script."""
        return [part for pair in self.fields(event).items() for part in pair]

    def wake(self, client: redis.Redis, message: str = "1") -> None:
        """Tell the service's idle relays that an entry was just written (a PUBLISH; the relays
        read their streams at once instead of at the end of their wait, up to ``relay_idle_max_ms``).
        For writes someone waits for, such as a post its followers wait for; best effort.
        ``RELEASED``: a relay gave streams up, which the others take at once; ``JOINED``: a relay
        joined, and the others give up their extras at once."""
        try:
            if hasattr(client, "get_default_node"):  # a Redis Cluster: any node tells every node's subscribers
                client.publish(self.wake_channel, message, target_nodes=client.get_default_node())
            else:
                client.publish(self.wake_channel, message)
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:  # they read within their wait
            log.warning("outbox relays not woken", outbox=self.key, error=repr(exc))

    def wake_with(self, tx, client: redis.Redis) -> bool:
        """Queue ``wake`` on ``tx``, a MULTI/EXEC of ``client`` that writes an entry: the
        wake-up leaves in the same EXEC as the entry, without a round trip of its own. Not on a
        Redis Cluster (its transactions take keyed commands only): False, and the caller wakes
        the relays once it is committed."""
        if hasattr(client, "get_default_node"):
            return False
        tx.publish(self.wake_channel, "1")
        return True

    def pending(self, client: redis.Redis) -> int:
        """Entries not yet published, over every stream (one pipeline: one round trip per node)."""
        with client.pipeline(transaction=False) as pipe:
            for stream in self.streams():
                pipe.xlen(stream.key)
            return sum(pipe.execute())


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


# A lease is ``SET <lease> <owner> NX PX``: renewed by its owner, or taken again if it lapsed and
# nobody took it meanwhile (nothing of the stream was published by another relay in between).
RENEW = LuaScript("relay_lease_renew", keys=("lease",), args=("owner", "lease_ms"), source="""
if redis.call('GET', K.lease) == A.owner then
  return redis.call('PEXPIRE', K.lease, A.lease_ms)
elseif redis.call('SET', K.lease, A.owner, 'NX', 'PX', A.lease_ms) then
  return 1
end
return 0
""")

RELEASE = LuaScript("relay_lease_release", keys=("lease",), args=("owner",), source="""
if redis.call('GET', K.lease) == A.owner then
  return redis.call('DEL', K.lease)
end
return 0
""")

# The relay's heartbeat, in Redis' clock (the relays' own clocks may disagree): forgets the
# relays silent for a lease and answers how many are left, this one included.
HEARTBEAT = LuaScript("relay_heartbeat", keys=("relays",), args=("owner", "ttl_ms"), source="""
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', K.relays, '-inf', ms - tonumber(A.ttl_ms))
redis.call('ZADD', K.relays, ms, A.owner)
redis.call('PEXPIRE', K.relays, 3 * tonumber(A.ttl_ms))
return redis.call('ZCARD', K.relays)
""")


class LeaseLost(Exception):
    """The relay could not renew a lease while Kafka had its batch: it gives the batch up."""


# The wake-up of a relay that gave streams up (its extras when others joined, or all of them as it
# stopped): the other relays take them at once rather than at their next lease round, up to a
# third of a lease later, while nobody would publish what is written to them.
RELEASED = "released"
# The wake-up of a relay that joined and found too few free streams for its share: the others
# give up their extras at once (then ``RELEASED``) rather than at their next lease round.
JOINED = "joined"


class OutboxRelay:
    """Publishes a service's outbox streams to Kafka, each in order, at least once.

    A stream is published only by the holder of its lease, so any number of relays (in any
    number of worker processes) share a service's streams without reordering one. Each relay
    takes free streams up to its fair share, ``ceil(streams / live relays)`` (live relays by
    their heartbeat), and releases the extras when others join. It renews its leases every
    third of a lease, also while it waits for Kafka's acknowledgements. A holder that cannot
    renew (Redis unreachable, the process frozen for a lease) gives its batch up without
    deleting it; what it had in flight may then land beside the next holder's copy (a
    duplicate that consumers drop by ``source`` + ``id``).

    Each round reads every stream it holds with a non-blocking XRANGE, all in one pipeline
    (one round trip per Redis node; a blocking read of many keys would need them in one slot),
    and sleeps ``idle_ms`` when all were empty, longer and longer (up to ``idle_max_ms``) once
    they stayed empty for ``awake_ms`` after its last batch. A writer's wake-up (``Outbox.wake``)
    ends the wait, and the batch it finds leaves without the linger: someone waits for it.
    """

    def __init__(self, outbox: Outbox, store: redis.Redis, producer_factory: Callable[[], KafkaProducer],
                 batch_size: int = 1000, lease_ms: int = 10_000, ack_timeout: float = 35.0, linger_ms: int = 0,
                 idle_ms: int = 50, idle_max_ms: int = 0, awake_ms: int = 0,
                 work_topics: tuple[str, ...] = WORK_TOPICS, wakeable: bool = False):
        self.outbox = outbox
        self.store = store
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.lease_ms = lease_ms
        self.ack_timeout = ack_timeout  # above the producer's delivery timeout: every future is done by then
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.linger_ms = linger_ms  # after the first entries, wait this long for more to join the batch
        self.idle_ms = idle_ms  # when every stream held was empty, wait this long before reading again
        # ... doubling with each empty round up to this (0: no growth): a long-idle relay reads
        # its streams a few times a second instead of twenty, and the first event after a quiet
        # spell waits at most this long.
        self.idle_max_ms = max(idle_max_ms, idle_ms)
        # ... but only once it has published nothing for this long: an event often causes more
        # a moment later (a post's fan-out batches, written by the consumer of its post.created,
        # a few hundred ms after it), and those find the relay still reading every ``idle_ms``.
        self.awake_ms = awake_ms
        # Batches of these topics are sent without the linger: a consumer writes a job's work
        # events together, in one transaction, so none is a few ms behind the others.
        self.work_topics = frozenset(outbox.settings.topic(t) for t in work_topics)
        # Idle, it waits on the outbox's wake channel (``Outbox.wake``) rather than only the clock.
        self.wakeable = wakeable
        self._wakeups = None  # its subscription, made on the first idle wait
        # Woken by a writer: someone waits for the entry, so the next batch goes without the linger.
        self._woken = False
        self._freed = False  # another relay gave streams up (``RELEASED``) or joined: rebalance at once
        self._joined = False  # its first lease round is done
        self.streams = outbox.streams()
        self.held: dict[str, Stream] = {}  # stream key → stream, of the leases this relay holds
        self._producer: KafkaProducer | None = None
        self._renewed_at = float("-inf")
        self._busy = 1  # streams that had entries in the last read: the batch is shared among them

    # -- leases -----------------------------------------------------------------------

    def _holds_lease(self, fresh: bool = False) -> bool:
        """Whether this relay holds any stream's lease, after taking or releasing streams to
        hold its fair share. Done at most every third of the lease unless ``fresh``: held, a
        lease cannot lapse in between. Only between batches (it may release streams)."""
        if fresh or time.monotonic() - self._renewed_at >= self.lease_ms / 3000:
            self._rebalance()
        return bool(self.held)

    def _rebalance(self) -> None:
        self._rebalance_leases()
        self._measure_depth()

    def _measure_depth(self) -> None:
        """Set ``rapport_outbox_depth``: the entries of the streams held (one pipeline of XLEN,
        once per lease round, not per batch)."""
        streams = list(self.held.values())
        depth = 0
        if streams:
            with self.store.pipeline(transaction=False) as pipe:
                for stream in streams:
                    pipe.xlen(stream.key)
                depth = sum(pipe.execute())
        DEPTH.labels(self.outbox.service).set(depth)

    def _rebalance_leases(self) -> None:
        live = int(HEARTBEAT(self.store, keys={"relays": self.outbox.relays_key}, owner=self.owner,
                             ttl_ms=self.lease_ms))
        share = math.ceil(len(self.streams) / max(live, 1))
        self._renew_held()
        if len(self.held) > share:
            extras = list(self.held.values())[share:]
            self._each(RELEASE, extras, owner=self.owner)
            for stream in extras:
                del self.held[stream.key]
            self.outbox.wake(self.store, RELEASED)
            log.info("outbox relay released streams", outbox=self.outbox.key, released=len(extras),
                     held=len(self.held), relays=live)
            return
        free = [s for s in self.streams if s.key not in self.held]
        random.shuffle(free)  # relays starting together do not all try the same streams first
        taken = 0
        while len(self.held) < share and free:
            tried, free = free[:share - len(self.held)], free[share - len(self.held):]
            with self.store.pipeline(transaction=False) as pipe:
                for stream in tried:
                    pipe.set(stream.lease_key, self.owner, nx=True, px=self.lease_ms)
                replies = pipe.execute()
            for stream, ok in zip(tried, replies):
                if ok:
                    self.held[stream.key] = stream
                    taken += 1
        if taken:
            self.held = {s.key: s for s in self.streams if s.key in self.held}  # in stream order
            log.info("outbox relay took streams", outbox=self.outbox.key, taken=taken, held=len(self.held),
                     relays=live)
        if not self._joined:
            self._joined = True
            if len(self.held) < share and live > 1:  # the others hold what would be its share
                self.outbox.wake(self.store, JOINED)

    def _renew_held(self) -> list[Stream]:
        """Renew every lease held (one pipeline); forget and return those lost."""
        now = time.monotonic()
        streams = list(self.held.values())
        replies = self._each(RENEW, streams, owner=self.owner, lease_ms=self.lease_ms)
        lost = [s for s, ok in zip(streams, replies) if not ok]
        for stream in lost:
            del self.held[stream.key]
        self._renewed_at = now
        if lost:
            log.warning("outbox relay lost leases", outbox=self.outbox.key, lost=len(lost))
        return lost

    def _each(self, script: LuaScript, streams: list[Stream], **args) -> list:
        """``script`` on each stream's lease: one pipeline per Redis node (a cluster's own
        pipeline refuses scripts)."""
        by_node: dict[int, tuple[redis.Redis, list[int]]] = {}
        for i, stream in enumerate(streams):
            client = node_of(self.store, stream.lease_key)
            by_node.setdefault(id(client.connection_pool), (client, []))[1].append(i)
        replies: list = [None] * len(streams)
        for client, indices in by_node.values():
            with client.pipeline(transaction=False) as pipe:
                for i in indices:
                    script(client, keys={"lease": streams[i].lease_key}, pipe=pipe, **args)
                for i, reply in zip(indices, pipe.execute()):
                    replies[i] = reply
        return replies

    def release(self) -> None:
        """Give every lease up and leave the heartbeat, so that the others take over at once."""
        try:
            self._each(RELEASE, list(self.held.values()), owner=self.owner)
            self.store.zrem(self.outbox.relays_key, self.owner)
        except redis.RedisError as exc:  # the leases lapse on their own
            log.warning("outbox relay leases not released", outbox=self.outbox.key, error=repr(exc))
        else:
            if self.held:
                self.outbox.wake(self.store, RELEASED)
        self.held = {}
        self._renewed_at = float("-inf")

    # -- publishing -------------------------------------------------------------------

    def _read(self) -> list[tuple[Stream, list]]:
        """The first entries of every stream held that has some (every entry still in a stream
        is unpublished), sharing ``batch_size`` among the streams that had entries last time."""
        if not self.held:
            return []
        count = max(1, self.batch_size // self._busy)
        streams = list(self.held.values())
        with self.store.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrange(stream.key, count=count)
            replies = pipe.execute()
        found = [(stream, entries) for stream, entries in zip(streams, replies) if entries]
        self._busy = max(1, len(found))
        return found

    def publish_batch(self, block_ms: int = 0) -> int:
        """Publish the first entries of the streams held; return how many Kafka acknowledged
        (and were deleted). With nothing to publish, read again every ``idle_ms`` for up to
        ``block_ms``."""
        self._holds_lease()
        deadline = time.monotonic() + block_ms / 1000
        batch = self._read()
        while not batch and time.monotonic() < deadline:
            time.sleep(min(self.idle_ms / 1000, max(deadline - time.monotonic(), 0)))
            batch = self._read()
        if not batch:
            return 0
        woken, self._woken = self._woken, False
        if (self.linger_ms and not woken and sum(len(entries) for _, entries in batch) < self.batch_size
                and not any(f["topic"] in self.work_topics for _, entries in batch for _, f in entries)):
            # Under load the next writes are a few ms behind: one batch (one flush, one XDEL
            # per stream) for all of them instead of one each.
            time.sleep(self.linger_ms / 1000)
            batch = self._read() or batch
        if time.monotonic() - self._renewed_at >= self.lease_ms / 3000:
            # Renew before sending: a relay that was frozen since it read sends nothing whose
            # lease it lost meanwhile.
            self._renew_held()
            batch = [(stream, entries) for stream, entries in batch if stream.key in self.held]
        if self._producer is None:
            self._producer = self._new_producer()
        sent = [
            (stream, [(entry_id, self._producer.send(
                f["topic"], key=f["key"].encode() if f["key"] else None, value=f["value"].encode(),
                headers=structured_headers(f["value"]), partition=self._partition(f))) for entry_id, f in entries])
            for stream, entries in batch
        ]
        self._await_acks()
        published, failed = 0, None
        with self.store.pipeline(transaction=False) as pipe:
            for stream, futures in sent:
                acked = []
                for entry_id, future in futures:
                    # Delete only the acknowledged prefix: what failed is retried before what followed it.
                    if not future.succeeded():
                        failed = failed or future
                        break
                    acked.append(entry_id)
                if acked:
                    pipe.xdel(stream.key, *acked)
                    published += len(acked)
            pipe.execute()
        if published:
            RELAYED.labels(self.outbox.service).inc(published)
        if failed is not None:
            raise KafkaError(f"publish failed: {failed.exception if failed.is_done else 'timed out'}")
        return published

    def _new_producer(self) -> KafkaProducer:
        """A producer that already knows the partitions of the service's topics: its first send
        to a topic it knows nothing of would wait for their metadata first (some 100 ms each)."""
        producer = self.producer_factory()
        try:
            for topic in sorted({self.outbox.settings.topic(t.topic) for t in BY_TYPE.values()
                                 if t.service == self.outbox.service}):
                producer.partitions_for(topic)
        except Exception:
            producer.close(timeout=0)
            raise
        return producer

    def _partition(self, entry: dict) -> int | None:
        """The partition an entry names by its ``spread`` (its number in its job, mod the topic's
        partitions); None (by its key) for the others, or when the number is unreadable."""
        spread = entry.get("spread")
        if spread is None:
            return None
        try:
            n = int(spread)
        except ValueError:
            return None
        partitions = sorted(self._producer.partitions_for(entry["topic"]) or ())
        return partitions[n % len(partitions)] if partitions else None

    def _await_acks(self) -> None:
        """Wait for Kafka to answer for every record sent, renewing the leases every third of one."""
        deadline = time.monotonic() + self.ack_timeout
        while True:
            try:
                self._producer.flush(timeout=min(self.lease_ms / 3000, max(deadline - time.monotonic(), 0.01)))
                return
            except KafkaTimeoutError:
                if time.monotonic() >= deadline:
                    return  # the futures not done count as failed
            if self._renew_held():
                raise LeaseLost(f"leases of {self.outbox.key} lost while waiting for Kafka")

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; survive Kafka and Redis outages; release the leases."""
        backoff = 0.2
        idle = self.idle_ms
        published_at = float("-inf")
        try:
            # Ready before it holds a stream: a relay taking streams over from another (which
            # may hold entries someone waits for) sends at once.
            self._producer = self._new_producer()
        except (KafkaError, OSError) as exc:  # made by its first batch (publish_batch)
            log.warning("outbox relay producer not ready", outbox=self.outbox.key, error=repr(exc))
        if self.wakeable:
            try:  # listening before its first lease round, whose JOINED the others answer
                self._listen()
            except (redis.RedisError, OSError) as exc:  # subscribed on its first idle wait
                log.warning("outbox relay not listening for wake-ups", outbox=self.outbox.key, error=repr(exc))
                self._unsubscribe()
        while not stop.is_set():
            try:
                freed, self._freed = self._freed, False
                if not self._holds_lease(fresh=freed):
                    self._idle(stop, min(self.lease_ms / 3000, 1.0))
                    continue
                if self.publish_batch():
                    idle = self.idle_ms
                    published_at = time.monotonic()
                    self._drain_wakeups()
                else:
                    self._idle(stop, idle / 1000)
                    if time.monotonic() - published_at >= self.awake_ms / 1000:
                        idle = min(idle * 2, self.idle_max_ms)
                backoff = 0.2
            except (KafkaError, redis.RedisError, OSError, LeaseLost) as exc:
                log.warning("outbox relay waiting", outbox=self.outbox.key, error=repr(exc), retry_in=backoff)
                # Lost lease: drop what is not sent yet, the next holder publishes it.
                self._reset_producer(timeout=0 if isinstance(exc, LeaseLost) else 2)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self._reset_producer()
        self._unsubscribe()
        self.release()

    def _idle(self, stop: threading.Event, seconds: float) -> None:
        """Wait ``seconds``, or less if a writer wakes the relay (``Outbox.wake``) or ``stop`` is set."""
        if not self.wakeable:
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        try:
            self._listen()
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                message = self._wakeups.get_message(timeout=min(left, 0.5))
                if message is not None:
                    self._seen(message, idle=True)
                    self._drain_wakeups()  # one read answers every wake-up so far
                    return
        except (redis.RedisError, OSError) as exc:  # waits on the clock until the next idle wait
            log.warning("outbox relay not listening for wake-ups", outbox=self.outbox.key, error=repr(exc))
            self._unsubscribe()
            stop.wait(max(deadline - time.monotonic(), 0))

    def _listen(self) -> None:
        """Subscribe to the wake channel, once."""
        if self._wakeups is None:
            self._wakeups = self.store.pubsub(ignore_subscribe_messages=True)
            self._wakeups.subscribe(self.outbox.wake_channel)

    def _drain_wakeups(self) -> None:
        """Drop the wake-ups received so far (without waiting): a busy relay reads anyway, and
        one that never read its subscription would grow its buffer in Redis until Redis cut it."""
        if self._wakeups is None:
            return
        try:
            while (message := self._wakeups.get_message(timeout=0)) is not None:
                self._seen(message, idle=False)
        except (redis.RedisError, OSError):  # subscribed again on the next idle wait
            self._unsubscribe()

    def _seen(self, message: dict, idle: bool) -> None:
        """Note a wake-up: streams freed by another relay, or (waking it from its idle wait) an
        entry someone waits for. Those that came while it was busy are dropped: a busy relay's
        next read finds their entries anyway, in a batch that lingers as under any load."""
        if message.get("data") in (RELEASED, RELEASED.encode(), JOINED, JOINED.encode()):
            self._freed = True
        elif idle:
            self._woken = True

    def _unsubscribe(self) -> None:
        if self._wakeups is not None:
            try:
                self._wakeups.close()
            except Exception:  # a broken connection: nothing to give back
                pass
            self._wakeups = None

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
