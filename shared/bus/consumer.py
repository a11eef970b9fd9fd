"""Kafka consumers as small chains: read (decode + validate) → dedup → handle and commit →
DLQ policy, with offsets committed about once a second.

A handler receives the event and an ``Effects``: it reads through ``effects.store`` and
queues its writes on ``effects.tx`` (``SlotTransactions``: one MULTI/EXEC per hash slot,
with ``effects.outbox`` for events it causes). The runner wraps each slot's part of the event
in the marker of that part (``running`` first, ``1`` last), executes them, sets the event's
own marker (naming its parts), then commits the offset: a crash before EXEC redoes the event,
a crash after it finds the markers and skips the parts that say ``1``.

Redis runs every command of an EXEC even when one fails at run time (a script raising on
a value) and rolls nothing back. A script of a part is given the part's marker
(``shared.lua.with_marker``) and writes ``failed`` there when it raises, in the same EXEC, so
the part is not done even if the worker dies right after EXEC. The runner also reads every
reply: an event with an error in one slot's part loses that part's marker and its own again
(which also covers a plain command failing): it is retried (only the parts not done), and
after ``MAX_HANDLER_ATTEMPTS`` goes to ``<topic>.dlq``. Its commands that did succeed stay
applied, a failed script's writes before its error too (handlers are idempotent).
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import redis
import structlog
from kafka import AsyncConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge, Histogram

from shared import store_client
from shared.bus.outbox import Outbox
from shared.bus.producer import get_producer
from shared.bus.transactions import REDIRECTED, Queued, SlotMoved, SlotTransactions
from shared.events import Event, PoisonEvent, UnknownEventType, decode
from shared.events.catalogue import BY_TYPE
from shared.events.envelope import caused_by
from shared.logs import get_logger
from shared.lua import LuaScript, with_marker
from shared.settings import Settings
from shared.slots import CrossSlot, slot

log = get_logger(__name__)

HANDLED = Counter("rapport_events_handled_total", "Events handled", ["consumer", "topic", "outcome"])
HALTED = Gauge("rapport_consumer_halted", "1 while a consumer is stopped by its DLQ limit", ["consumer"])
HANDLE_SECONDS = Histogram("rapport_event_handle_seconds",
                           "Time to read, dedup, handle and commit one batch of a partition's records "
                           "(one record unless the consumer batches)", ["consumer", "topic"],
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
LAG = Gauge("rapport_consumer_lag", "Records of a partition not yet handled by its consumer (the partition's "
            "high watermark minus the consumer's position)", ["consumer", "topic", "partition"])

# How often a runner refreshes its lag gauges (from what its fetches already told it).
LAG_INTERVAL_SECONDS = 1.0

# After this many failures of a handler on one event (not infrastructure errors), the event
# is poison: to the DLQ, and the consumer goes on.
MAX_HANDLER_ATTEMPTS = 3
METADATA_MAX_AGE_MS = 5_000
TRANSIENT = (*store_client.UNAVAILABLE, KafkaError, OSError)


@dataclass
class Effects:
    """What a handler may touch: read the store, queue writes on the transaction."""
    store: redis.Redis
    tx: SlotTransactions  # one MULTI/EXEC per hash slot (shared/bus/transactions.py)
    outbox: Outbox
    settings: Settings
    extra: dict = field(default_factory=dict)  # service resources, e.g. the timeline cache
    wake: bool = False  # set by ``wake_relays``
    # What the consumer's ``reads_ahead`` read for the whole batch (empty without one, or when
    # it failed: a handler then reads for itself).
    ahead: dict = field(default_factory=dict)

    def wake_relays(self) -> None:
        """Wake the service's idle relays once the handler's writes are committed (``Outbox.wake``):
        for outbox entries someone waits for, such as a post's fan-out batches."""
        self.wake = True


Handler = Callable[[Event, Effects], None]


@dataclass(frozen=True)
class Consumer:
    """One entry of a service's consumer registry."""
    name: str  # also the consumer group, e.g. "notifications.inbox"
    service: str  # whose store the effects go to
    topics: tuple[str, ...]
    handlers: dict[str, Handler]  # event type name ("follow.created") → handler
    max_poll_records: int = 500
    # > 1: up to this many records of a partition share one dedup read and one MULTI/EXEC.
    # Only for handlers whose reads need not see the writes of the events before them in
    # the same batch.
    batch_size: int = 1
    # With batch_size > 1: a batch ends before a record whose Kafka key (its aggregate: a
    # member pair, a follow edge) is already in it, so a handler's reads never miss the writes
    # of an earlier event of its own aggregate; for handlers whose reads of other aggregates'
    # state may be a batch old (their writes run in order in the one MULTI/EXEC).
    batch_by_key: bool = False
    # A fetch returns once it has this many bytes (or after ``consumer_fetch_wait_ms``); None:
    # ``settings.consumer_fetch_min_bytes``. 1 for a consumer whose events someone waits for live
    # (a fetch returns as soon as anything arrived; an idle one waits as long as any).
    fetch_min_bytes: int | None = None
    # ``reads_ahead(store, events, settings) -> dict``: the state the batch's handlers read, for
    # all of them in one round trip before they run (each finds it in ``fx.ahead``, and reads
    # for itself what is not there). Only reads that need not see the batch's own writes.
    reads_ahead: Callable[[redis.Redis, list[Event], Settings], dict] | None = None

    def handler_for(self, event: Event) -> Handler | None:
        return self.handlers.get(event.name)

    def handles_type(self, type_: str) -> bool:
        """Whether an event of CloudEvents ``type_`` has a handler here (unknown types: no)."""
        etype = BY_TYPE.get(type_)
        return etype is not None and etype.name in self.handlers


# -- the steps ------------------------------------------------------------------------

SKIPPED, DUPLICATE, HANDLED_OK, DEAD_LETTERED = "skipped", "duplicate", "handled", "dead_lettered"


@dataclass
class Item:
    """One record on its way through the chain; ``outcome`` set once it is done."""
    record: ConsumerRecord
    event: Event | None = None
    handler: Handler | None = None
    marker: str = ""
    outcome: str | None = None
    poison: str | None = None  # why it cannot be read
    error: BaseException | None = None  # why its transaction failed


def distinct_keys(records: list[ConsumerRecord]) -> list[ConsumerRecord]:
    """The longest prefix of ``records`` in which no Kafka key comes twice (at least one record)."""
    seen = set()
    for i, record in enumerate(records):
        if record.key in seen:
            return records[:i]
        seen.add(record.key)
    return records


def _header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name and value is not None:
            return value.decode(errors="replace")
    return None


def read(record: ConsumerRecord, spec: Consumer) -> Item:
    """Decode and validate a record into an Item: with its event and handler, or skipped, or poison.

    A record whose ``rapport-type`` header names a type without a handler here is skipped before
    its JSON is parsed; records without the header are decoded to learn their type.
    """
    item = Item(record)
    type_ = _header(record, "rapport-type")
    if type_ is not None and not spec.handles_type(type_):
        item.outcome = SKIPPED
        return item
    try:
        item.event = decode(record.value, record.key)
    except UnknownEventType:
        item.outcome = SKIPPED  # a newer producer's type: not ours to judge
        return item
    except PoisonEvent as exc:
        item.poison = str(exc)
        return item
    item.handler = spec.handler_for(item.event)
    if item.handler is None:
        item.outcome = SKIPPED
    return item


# A part's marker while its transaction runs; a script of the part that fails writes
# ``lua.FAILED`` there, and the part's last command (``_MARK_DONE``) ``1`` if it still says this.
RUNNING = "running"
DONE = "1"

_MARK_DONE = LuaScript("mark_part_done", keys=("marker",), source=f"""
if redis.call('GET', K.marker) ~= '{RUNNING}' then return 0 end
redis.call('SET', K.marker, '{DONE}', 'KEEPTTL')
return 1
""")


def _is_done(value) -> bool:
    return value in (DONE, DONE.encode())


class Dedup:
    """The markers of the events a consumer group handled.

    ``dedup:<group>:{<tag>}:<source>|<id>``: the event's part in the slot of ``{<tag>}``,
    written in that slot's transaction: ``running`` first, ``1`` by its last command unless a
    script of the part wrote ``failed`` in between. Only ``1`` is done, so a redo applies only
    the slots whose part is not. ``dedup:<group>:<source>|<id>``: the event's own marker,
    written after its parts' transactions, says which parts it has (a JSON list of their tags)
    and is done when each of them is (``1``: done, as the markers written before slots).
    Checked before its handler runs. Kept ``ttl_seconds``.
    """

    def __init__(self, store: redis.Redis, group: str, ttl_seconds: int):
        self.store = store
        self.prefix = f"dedup:{group}:"
        self.ttl = ttl_seconds

    def slot_marker(self, item: Item, tag: str) -> str:
        return f"{self.prefix}{tag}:{item.event.dedup_key}"

    @staticmethod
    def parts_value(tags) -> str:
        """The value of an event's own marker: its parts' tags."""
        return json.dumps(sorted(tags)) if tags else DONE

    def mark(self, items: list[Item]) -> list[Item]:
        """Give each item its marker; set DUPLICATE on those done before (or twice in ``items``).
        Returns the items left to handle. One round trip, one key per command, and a second for
        the events met before, whose parts are read (an event whose worker died after a part
        failed has its marker, not the part)."""
        for item in items:
            item.marker = self.prefix + item.event.dedup_key
        values = self.values([item.marker for item in items])
        parts: dict[int, list[str]] = {}
        for item, value in zip(items, values):
            if value is not None and not _is_done(value):
                try:
                    tags = json.loads(value)
                except ValueError:
                    tags = None
                # An unreadable marker is not trusted: the handler runs, the parts say what is done.
                parts[id(item)] = [self.slot_marker(item, t) for t in tags] if isinstance(tags, list) else [""]
        wanted = [m for ms in parts.values() for m in ms if m]
        found = dict(zip(wanted, self.done(wanted)))
        todo, marked = [], set()
        for item, value in zip(items, values):
            ms = parts.get(id(item))
            before = value is not None and (ms is None or all(found.get(m, False) for m in ms))
            if before or item.marker in marked:
                item.outcome = DUPLICATE
            else:
                marked.add(item.marker)
                todo.append(item)
        return todo

    def values(self, keys: list[str]) -> list:
        """The values of ``keys`` (None where missing): one round trip per node, one key per command."""
        if not keys:
            return []
        with self.store.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            return pipe.execute()

    def done(self, keys: list[str]) -> list[bool]:
        """Which of ``keys`` say done (``1``); a part ``running`` or ``failed`` is not."""
        return [_is_done(v) for v in self.values(keys)]

    def forget(self, keys: list[str]) -> None:
        """Remove markers (of parts whose transaction failed): one key per command."""
        if not keys:
            return
        with self.store.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.delete(key)
            pipe.execute()


_SCRIPTS = {"EVAL", "EVALSHA"}


def with_part_marker(command: tuple, marker: str, sources: dict[str, str]) -> tuple:
    """A command of a part as the part's transaction runs it: a script (by its source, or by a
    SHA of ``sources``) is given the part's ``marker`` (``lua.with_marker``), which it shares
    the slot of; any other command as it is."""
    args, options = command
    name = args[0].upper() if isinstance(args[0], str) else args[0].decode().upper()
    if name not in _SCRIPTS:
        return command
    source = args[1] if name == "EVAL" else sources.get(args[1])
    if source is None:
        return command
    if isinstance(source, bytes):
        source = source.decode()
    count = int(args[2])
    keys, argv = args[3:3 + count], args[3 + count:]
    return ("EVAL", with_marker(source), count + 1, *keys, marker, *argv), options


def handle_and_commit(items: list[Item], dedup: Dedup, effects: Callable[[SlotTransactions], Effects],
                      per_slot: bool | None = None) -> None:
    """Run every item's handler, then commit their writes with the markers of their parts
    (``Dedup``), and the events' own markers after them.

    ``per_slot`` (always on a Redis Cluster): one MULTI/EXEC per hash slot, each with the
    parts of every event in that slot, one round trip per node. Otherwise (a single node): the
    whole batch in one MULTI/EXEC, each event's commands in the order queued, its parts'
    markers after them; the handlers of the layout before shards read in one slot what they
    queued in another, which only this order keeps.

    Each part starts by setting its marker ``running`` and ends with ``_MARK_DONE`` (``1`` if
    it still says ``running``); its scripts write ``failed`` there if they fail. Every reply
    is read: an item with an error in any of its parts (or whose handler raised while
    queuing, whose commands are then dropped) gets ``error`` and loses its marker and the
    failed parts' markers again (a plain command's error leaves its part ``1`` until then);
    the parts that committed keep theirs, so its retry applies only what is missing.
    Infrastructure errors propagate.
    """
    tx = SlotTransactions(dedup.store, strict=per_slot)
    per_slot = tx.strict
    queued: list[tuple[Item, Queued]] = []
    given: list[Effects] = []
    for item in items:
        structlog.contextvars.bind_contextvars(event_id=item.event.id, event_type=item.event.type)
        try:
            with caused_by(item.marker):  # what it emits has ids a retry gives again
                given.append(effects(tx))
                item.handler(item.event, given[-1])
        except TRANSIENT as exc:
            nodes = getattr(dedup.store, "nodes_manager", None)
            if isinstance(exc, REDIRECTED) and nodes is not None:
                # A handler's own pipeline or transaction met a slot that moved: the map is
                # read again before the retry, which would otherwise be sent to the same node.
                nodes.initialize()
            raise
        except Exception as exc:  # a handler bug or an event it cannot apply
            tx.take()
            item.error = exc
            continue
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "event_type")
        queued.append((item, tx.take()))
    # Parts committed before (by an attempt that failed elsewhere, or a worker that died
    # between two nodes' transactions) are not applied again.
    markers: dict[tuple[int, int], str] = {}  # (item, slot) → the marker of that part
    kept = []
    for item, q in queued:
        mine = {where: dedup.slot_marker(item, part.tag) for where, part in q.parts.items()}
        astray = [m for where, m in mine.items() if slot(m) != where]
        if astray:  # a key whose hash tag cannot be borrowed (a "}" in a key without one)
            item.error = CrossSlot(f"marker {astray[0]!r} is not in the slot of its part's keys")
            continue
        kept.append((item, q))
        markers.update({(id(item), where): m for where, m in mine.items()})
    queued = kept
    done = dict(zip(markers, dedup.done(list(markers.values()))))
    sources = {script.sha: script.script for script in tx.scripts}  # register_script's, by SHA
    blocks: list[tuple[str, list]] = []  # (a key of its slot, commands): one MULTI/EXEC each
    block_of: dict[int, int] = {}  # slot → its block (per slot)

    def block(where: int, key: str) -> int:
        if not per_slot:
            if not blocks:
                blocks.append((key, []))
            return 0
        if where not in block_of:
            block_of[where] = len(blocks)
            blocks.append((key, []))
        return block_of[where]

    spans: list[tuple[Item, str, int, list[int]]] = []  # item, part's marker, block, its commands
    for item, q in queued:
        todo = {where: [] for where in q.parts if not done[(id(item), where)]}
        for where, indices in todo.items():  # each part starts "running"
            marker = markers[(id(item), where)]
            commands = blocks[block(where, marker)][1]
            indices.append(len(commands))
            commands.append((("SET", marker, RUNNING, "EX", dedup.ttl), {}))
        for where, command in q.in_order():
            if where not in todo:
                continue
            marker = markers[(id(item), where)]
            commands = blocks[block(where, marker)][1]
            todo[where].append(len(commands))
            commands.append(with_part_marker(command, marker, sources))
        for where, indices in todo.items():  # and ends "1", unless one of its scripts failed
            marker = markers[(id(item), where)]
            b = block(where, marker)
            commands = blocks[b][1]
            indices.append(len(commands))
            commands.append((("EVAL", _MARK_DONE.source, 1, marker), {}))
            spans.append((item, marker, b, indices))
    # The event's own marker names its parts: a redo trusts it only once each of them is done.
    after = [(item.marker, ("SET", item.marker, dedup.parts_value(q.parts[w].tag for w in q.parts), "EX", dedup.ttl))
             for item, q in queued]
    replies, _ = tx.commit(blocks, after) if queued else ([], [])
    if any(fx.wake for fx in given):
        given[0].outbox.wake(dedup.store)
    failed: dict[int, Item] = {}
    forget: list[str] = []
    moved = None
    for item, marker, block, indices in spans:
        errors = [replies[block][i] for i in indices if isinstance(replies[block][i], Exception)]
        if errors:
            item.error = item.error or errors[0]
            failed[id(item)] = item
            forget.append(marker)
            if isinstance(errors[0], REDIRECTED):
                moved = errors[0]
    for item, _ in queued:
        if id(item) in failed:
            forget.append(item.marker)
        else:
            item.outcome = HANDLED_OK
    dedup.forget(forget)
    if moved is not None:
        # Not the event's fault: refresh the cluster's map and redo; the parts done stay done.
        nodes = getattr(dedup.store, "nodes_manager", None)
        if nodes is not None:
            nodes.initialize()
        raise SlotMoved(f"a slot moved while committing: {moved}")


class Attempts:
    """How often each record's handler failed; decides between retrying and the DLQ."""

    def __init__(self, limit: int = MAX_HANDLER_ATTEMPTS):
        self.limit = limit
        self._counts: dict[tuple[str, int, int], int] = {}

    def failed(self, record: ConsumerRecord) -> bool:
        """Count one failure; True when the record has used up its attempts (and is forgotten)."""
        where = (record.topic, record.partition, record.offset)
        self._counts[where] = self._counts.get(where, 0) + 1
        if self._counts[where] < self.limit:
            return False
        del self._counts[where]
        return True

    def failing(self, record: ConsumerRecord) -> bool:
        return (record.topic, record.partition, record.offset) in self._counts

    def forget(self, tps) -> None:
        tps = {(tp.topic, tp.partition) for tp in tps}
        self._counts = {k: v for k, v in self._counts.items() if k[:2] not in tps}


class DlqLimit:
    """Stops a consumer that would dead-letter too much (as arroyo's ``DlqLimit``).

    More than ``max_consecutive`` dead letters in a row on one partition, or more than
    ``max_percent`` % of the last ``window`` records read (judged once ``window // 10``
    were read), and ``admit`` refuses. 0 turns a limit off.
    """

    def __init__(self, max_consecutive: int, max_percent: int, window: int = 1000):
        self.max_consecutive = max_consecutive
        self.max_percent = max_percent
        self.window = window
        self._in_a_row: dict[tuple[str, int], int] = {}
        self._recent: deque[bool] = deque(maxlen=window)
        self._dead = 0

    def _remember(self, dead: bool) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._dead -= self._recent[0]
        self._recent.append(dead)
        self._dead += dead

    def passed(self, record: ConsumerRecord) -> None:
        """A record was handled, skipped or a duplicate."""
        self._in_a_row[(record.topic, record.partition)] = 0
        self._remember(False)

    def admit(self, record: ConsumerRecord) -> str | None:
        """Count ``record`` as a dead letter; None if that is within the limits, else why not."""
        where = (record.topic, record.partition)
        in_a_row = self._in_a_row.get(where, 0) + 1
        if self.max_consecutive and in_a_row > self.max_consecutive:
            return f"more than {self.max_consecutive} dead letters in a row on {record.topic}[{record.partition}]"
        read, dead = len(self._recent) + 1, self._dead + 1
        if self.max_percent and read >= self.window // 10 and dead * 100 > self.max_percent * read:
            return f"{dead} dead letters in the last {read} records, over {self.max_percent}%"
        self._in_a_row[where] = in_a_row
        self._remember(True)
        return None


class Offsets:
    """The next offset of each partition that is done, committed at most every ``interval`` s."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.pending: dict[TopicPartition, int] = {}
        self._last = clock()

    def done(self, record: ConsumerRecord) -> None:
        self.pending[TopicPartition(record.topic, record.partition)] = record.offset + 1

    def due(self) -> bool:
        return bool(self.pending) and self.clock() - self._last >= self.interval

    def take(self, tps=None) -> dict[TopicPartition, OffsetAndMetadata]:
        """Remove and return what is done (of ``tps`` only, if given), as Kafka commits it."""
        chosen = {tp: off for tp, off in self.pending.items() if tps is None or tp in tps}
        for tp in chosen:
            del self.pending[tp]
        self._last = self.clock()
        return {tp: OffsetAndMetadata(off, "", -1) for tp, off in chosen.items()}

    def commit(self, consumer: KafkaConsumer, tps=None) -> None:
        """Commit what is done (of ``tps`` only, if given); kept for the next try if Kafka fails."""
        chosen = self.take(tps)
        if not chosen:
            return
        try:
            consumer.commit(chosen)
        except CommitFailedError as exc:  # the group moved on: the new owners redo, dedup skips
            log.warning("offsets not committed", error=repr(exc))
        except Exception:
            for tp, meta in chosen.items():
                self.pending.setdefault(tp, meta.offset)
            raise


class _Rebalance(AsyncConsumerRebalanceListener):
    # kafka-python 3 calls listeners on its IO loop, where the blocking ``commit()`` is refused:
    # the listener awaits the coordinator's own commit instead (the version is pinned).
    def __init__(self, runner: "ConsumerRunner", consumer: KafkaConsumer):
        self.runner = runner
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked):
        # Commit what is done before another member takes these partitions over.
        done = self.runner.offsets.take(set(revoked))
        if done:
            try:
                await self.consumer._coordinator._commit_offsets_sync_async(done)
                log.info("offsets committed on revocation", consumer=self.runner.group, partitions=len(done))
            except Exception as exc:  # the new owners redo these events; dedup skips them
                log.warning("offsets not committed on revocation", error=repr(exc))
        self.runner.attempts.forget(revoked)
        self.runner.forget_lag(revoked)

    async def on_partitions_assigned(self, assigned):
        if self.runner.halted and assigned:
            self.consumer.pause(*assigned)


def _why(exc: BaseException | None) -> str:
    # A Redis error's repr hides its message (the script's error text): name and message.
    return f"{type(exc).__name__}: {exc}"


class _Halt(Exception):
    """The DLQ limit stopped the consumer."""


class ConsumerRunner:
    """Runs one ``Consumer`` in a poll loop until stopped (or halted by its DLQ limit)."""

    def __init__(self, spec: Consumer, settings: Settings, store: redis.Redis, outbox: Outbox,
                 extra: dict | None = None, consumer_factory: Callable[..., KafkaConsumer] = KafkaConsumer,
                 per_slot: bool | None = None):
        self.spec = spec
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.extra = extra or {}
        self.consumer_factory = consumer_factory
        self.group = settings.group(spec.name)
        self.dedup = Dedup(store, self.group, settings.dedup_ttl_seconds)
        self.attempts = Attempts()
        self.limit = DlqLimit(settings.dlq_max_consecutive, settings.dlq_max_percent)
        self.offsets = Offsets(settings.consumer_commit_interval_ms / 1000)
        self.halted: str | None = None  # why the DLQ limit stopped this consumer
        # One MULTI/EXEC per hash slot (always on a cluster), or per batch (a single node's
        # default); see ``handle_and_commit``.
        self.per_slot = per_slot
        self._lag_at = float("-inf")
        self._lagging: set[tuple[str, int]] = set()  # the partitions with a lag gauge
        HALTED.labels(spec.name).set(0)

    def _effects(self, tx: SlotTransactions, ahead: dict | None = None) -> Effects:
        return Effects(self.store, tx, self.outbox, self.settings, self.extra, ahead=ahead or {})

    # -- the chain ------------------------------------------------------------------

    def process(self, records: list[ConsumerRecord]) -> list[Item]:
        """Read, dedup and handle consecutive records of one partition in one transaction.

        Returns their items; those without an outcome are poison or failed, for ``settle``.
        Raises only on infrastructure failures (nothing of the records is then done).
        """
        items = [read(record, self.spec) for record in records]
        todo = [i for i in items if i.outcome is None and i.poison is None]
        if todo:
            todo = self.dedup.mark(todo)
        if todo:
            ahead = self.read_ahead([i.event for i in todo])
            handle_and_commit(todo, self.dedup, lambda tx: self._effects(tx, ahead), self.per_slot)
        return items

    def read_ahead(self, events: list[Event]) -> dict:
        """The consumer's ``reads_ahead`` for ``events``; empty without one, or when it failed
        otherwise than by the infrastructure (the handlers read for themselves then)."""
        if self.spec.reads_ahead is None:
            return {}
        try:
            return self.spec.reads_ahead(self.store, events, self.settings)
        except TRANSIENT:
            raise
        except Exception as exc:
            log.warning("reads ahead failed; the handlers read for themselves", consumer=self.group, error=repr(exc))
            return {}

    def settle(self, item: Item) -> bool:
        """The DLQ policy for one item: True when it is done (its offset may be committed),
        False when it is to be retried. Raises ``_Halt`` past the DLQ limit."""
        if item.outcome is None:
            if item.poison is not None:
                reason = item.poison
            elif not self.attempts.failed(item.record):
                log.warning("handler failed, will retry", error=_why(item.error), offset=item.record.offset,
                            event_id=item.event.id)
                return False
            else:
                reason = f"handler failed {MAX_HANDLER_ATTEMPTS} times: {_why(item.error)}"
            refused = self.limit.admit(item.record)
            if refused:
                raise _Halt(refused)
            self.dead_letter(item.record, reason)
            item.outcome = DEAD_LETTERED
        else:
            self.limit.passed(item.record)
        HANDLED.labels(self.spec.name, item.record.topic, item.outcome).inc()
        return True

    def dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        """Send ``record`` as received to ``<topic>.dlq`` with the reason in its headers."""
        headers = [*(record.headers or ()),
            ("dlq.reason", reason[:1000].encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
            ("dlq.consumer", self.group.encode()),
        ]
        get_producer(self.settings).send(f"{record.topic}.dlq", key=record.key, value=record.value,
                                         headers=headers).get(timeout=10)
        log.warning("event dead-lettered", topic=record.topic, offset=record.offset, reason=reason)

    def process_partition(self, records: list[ConsumerRecord]) -> int | None:
        """Handle one partition's records in order; return the offset to come back to, if any."""
        start = 0
        while start < len(records):
            # A record that failed before is retried alone: the others of its batch are done.
            size = 1 if self.attempts.failing(records[start]) else max(1, self.spec.batch_size)
            chunk = records[start:start + size]
            if self.spec.batch_by_key and len(chunk) > 1:
                chunk = distinct_keys(chunk)
            started = time.perf_counter()
            try:
                items = self.process(chunk)
            except TRANSIENT as exc:
                log.warning("consumer waiting", consumer=self.group, error=repr(exc))
                return records[start].offset
            HANDLE_SECONDS.labels(self.spec.name, chunk[0].topic).observe(time.perf_counter() - started)
            for item in items:
                if not self.settle(item):
                    return item.record.offset
                self.offsets.done(item.record)
            start += len(chunk)
        return None

    # -- the loop -------------------------------------------------------------------

    def make_consumer(self) -> KafkaConsumer:
        consumer = self.consumer_factory(
            bootstrap_servers=self.settings.kafka_bootstrap.split(","),
            group_id=self.group,
            client_id=f"{self.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.spec.max_poll_records,
            fetch_max_wait_ms=self.settings.consumer_fetch_wait_ms,
            fetch_min_bytes=self.spec.fetch_min_bytes or self.settings.consumer_fetch_min_bytes,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            # On several brokers a topic just created reaches each broker's metadata a moment
            # apart: a group leader that asked a broker not yet told assigns none of its
            # partitions, and only a metadata refresh (default every 5 minutes) makes the group
            # rejoin. Refreshed every 5 s, a group holds its partitions seconds later.
            metadata_max_age_ms=METADATA_MAX_AGE_MS,
        )
        topics = [self.settings.topic(t) for t in self.spec.topics]
        consumer.subscribe(topics=topics, listener=_Rebalance(self, consumer))
        # The topics' metadata before the first poll joins the group: a group leader that joins
        # before its client has it (seen on three brokers) assigns none of their partitions and
        # does not rejoin once it comes. Read once subscribed, it is the subscription's own
        # metadata: asked for before, it differs from the subscription's and the group rejoins
        # (a revocation) seconds after its first assignment.
        for topic in topics:
            consumer.partitions_for_topic(topic)
        return consumer

    def run(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Poll, handle and commit until ``stop`` is set; survives Kafka and Redis outages."""
        backoff = 0.2
        consumer = None
        while not stop.is_set():
            try:
                if consumer is None:
                    consumer = self.make_consumer()
                retry = self.poll_once(consumer, ready)
                if retry:
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                else:
                    backoff = 0.2
            except TRANSIENT as exc:
                log.warning("consumer waiting", consumer=self.group, error=repr(exc), retry_in=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        if consumer is not None:
            try:
                self.offsets.commit(consumer)  # what is done, before leaving the group
            except Exception as exc:
                log.warning("offsets not committed at shutdown", error=repr(exc))
            consumer.close(autocommit=False)

    def poll_once(self, consumer: KafkaConsumer, ready: threading.Event | None = None) -> bool:
        """One poll: each partition's records in order; commit if due. True if a record waits for a retry."""
        batch = consumer.poll(timeout_ms=500)
        if ready is not None and consumer.assignment():
            ready.set()
        waiting = False
        for tp, records in batch.items():
            try:
                retry_at = self.process_partition(records)
            except _Halt as exc:
                self._halt(consumer, exc)
                return False
            if retry_at is not None:
                # Come back to this record on the next poll; the partition's later records wait.
                consumer.seek(tp, retry_at)
                waiting = True
        if self.offsets.due():
            self.offsets.commit(consumer)
        if time.monotonic() - self._lag_at >= LAG_INTERVAL_SECONDS:
            self.report_lag(consumer)
        return waiting

    def report_lag(self, consumer: KafkaConsumer) -> None:
        """Set each assigned partition's lag gauge: its high watermark (from the last fetch
        response) minus the consumer's position. Both are read from kafka-python's subscription
        state (the version is pinned): ``KafkaConsumer.position`` may ask the coordinator, and
        this runs about once a second, never a round trip to a broker."""
        self._lag_at = time.monotonic()
        state = getattr(consumer, "_subscription", None)
        if state is None:
            return
        try:
            assigned = list(state.assignment.items())
        except RuntimeError:  # changed by kafka-python's IO thread meanwhile: next time
            return
        for tp, partition in assigned:
            position, highwater = partition.position, partition.highwater
            if position is None or highwater is None:
                continue
            LAG.labels(self.spec.name, tp.topic, str(tp.partition)).set(max(highwater - position.offset, 0))
            self._lagging.add((tp.topic, tp.partition))

    def forget_lag(self, tps) -> None:
        """Drop the lag gauges of partitions this consumer no longer holds (another member reports them)."""
        for tp in tps:
            if (tp.topic, tp.partition) in self._lagging:
                self._lagging.discard((tp.topic, tp.partition))
                LAG.remove(self.spec.name, tp.topic, str(tp.partition))

    def _halt(self, consumer: KafkaConsumer, exc: _Halt) -> None:
        """Stop consuming: commit what is done (not the record that tripped the limit) and
        pause every partition; the consumer keeps them, so no other member takes the flood."""
        self.halted = str(exc)
        HALTED.labels(self.spec.name).set(1)
        log.error("consumer stopped by its DLQ limit", consumer=self.group, reason=self.halted)
        self.offsets.commit(consumer)
        consumer.pause(*consumer.assignment())
