"""A consumer's writes, one MULTI/EXEC per hash slot.

On a Redis Cluster a transaction may only touch keys of one slot, so the writes a batch of
events queues are grouped by slot: ``SlotTransactions`` is the ``effects.tx`` handlers
queue on. Any command queued on it goes to the part of its slot (by its first key; on a
cluster, every key of a script, DEL, EXISTS, MGET… must be in that slot);
``shard(tag)`` is the same, bound to one shard tag. Each slot's part is committed in one
MULTI/EXEC, all the slots of one Redis node sent in one round trip (on a single node:
every slot in one).

Scripts of redis-py's ``register_script`` called with ``client=fx.tx`` work too: the runner
sends them by their source, given their part's marker as every script (``with_part_marker``
in ``shared/bus/consumer.py``), and any still queued by SHA are loaded on each node before
the transactions that run them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, ResponseError, TryAgainError

from shared.slots import CrossSlot, check_one_slot, slot

_SCRIPT_COMMANDS = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"}
_EVERY_ARGUMENT_A_KEY = {"DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "SINTER", "SUNION", "SDIFF", "PFCOUNT"}
# Replies that say the slot is not (or not yet) where the client sent it: a resharding or a
# failover in progress. Not the event's fault: the runner redoes it later.
REDIRECTED = (AskError, TryAgainError, ClusterDownError)  # MovedError is an AskError


class SlotMoved(redis.ConnectionError):
    """A slot's transaction met a resharding or failover: redo the batch (the parts committed
    have their markers)."""


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def command_keys(args) -> list[str]:
    """The keys of a command as queued (``args[0]`` its name)."""
    name = _text(args[0]).upper()
    if name in _SCRIPT_COMMANDS:
        count = int(args[2])
        return [_text(k) for k in args[3:3 + count]]
    if name in _EVERY_ARGUMENT_A_KEY:
        return [_text(k) for k in args[1:]]
    return [_text(args[1])] if len(args) > 1 else []


def hash_tag(key: str) -> str:
    """The part of ``key`` Redis hashes, in braces: ``{s17}`` for ``follows:{s17}:x``; the
    whole key for a key without a hash tag. A key built with it shares ``key``'s slot."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start:end + 1]
    return "{" + key + "}"


def node_of(store: redis.Redis | RedisCluster, key: str) -> redis.Redis:
    """The client of the node serving ``key`` (the store itself on a single node): a plain
    client, whose pipelines take what a cluster's pipeline refuses (EVAL, MULTI/EXEC)."""
    if isinstance(store, RedisCluster):
        return store.get_redis_connection(store.get_node_from_key(key))
    return store


@dataclass
class Part:
    """What one event queued for one slot: its commands, and the tag its marker will carry."""
    tag: str
    commands: list = field(default_factory=list)


@dataclass
class Queued:
    """What one handler queued: its parts by slot, and the slot of each command in order."""
    parts: dict[int, Part]
    order: list[int]

    def in_order(self):
        """(slot, command) in the order the handler queued them."""
        seen = {where: 0 for where in self.parts}
        for where in self.order:
            yield where, self.parts[where].commands[seen[where]]
            seen[where] += 1


class SlotTransactions(redis.client.Pipeline):
    """``effects.tx``: queues a handler's commands by slot; see the module's docstring.

    Between handlers the runner takes what the last one queued (``take``), slot by slot.
    """

    def __init__(self, store: redis.Redis | RedisCluster, strict: bool | None = None):
        self.store = store
        # Strict: a command over two slots is refused while queuing. On a single node, by
        # default, it is queued in its first key's slot and runs (the handlers of the layout
        # before shards still have such scripts; LuaScript refuses two slots everywhere).
        # A cluster is always strict: one transaction over two slots would fail there.
        self.strict = isinstance(store, RedisCluster) or bool(strict)
        client = store.get_redis_connection(store.get_default_node()) if isinstance(store, RedisCluster) else store
        super().__init__(client.connection_pool, client.response_callbacks, True, None)
        self._parts: dict[int, Part] = {}
        self._order: list[int] = []  # the slot of each command, in the order queued

    def pipeline_execute_command(self, *args, **options) -> "SlotTransactions":
        keys = command_keys(args)
        if not keys:
            raise CrossSlot(f"{_text(args[0])} names no key: a consumer's write must name its slot")
        if self.strict:
            check_one_slot(keys, f"{_text(args[0])} in a consumer's transaction")
        self._queue(slot(keys[0]), hash_tag(keys[0]), args, options)
        return self

    def _queue(self, where: int, tag: str, args, options) -> None:
        part = self._parts.get(where)
        if part is None:
            part = self._parts[where] = Part(tag)
        part.commands.append((args, options))
        self._order.append(where)

    def shard(self, tag: str) -> "ShardTransaction":
        """The transaction of shard ``tag``'s slot: what is queued on it must be in that slot."""
        return ShardTransaction(self, tag)

    def take(self) -> Queued:
        """What was queued since the last ``take``, by slot."""
        queued = Queued(self._parts, self._order)
        self._parts, self._order = {}, []
        return queued

    def execute(self, raise_on_error: bool = True):
        raise TypeError("the consumer runner commits a handler's writes; a handler only queues them")

    # -- committing -----------------------------------------------------------------------

    def node_of(self, key: str) -> redis.Redis:
        return node_of(self.store, key)

    def commit(self, blocks: list[tuple[str, list]], after: list[tuple[str, tuple]]) -> tuple[list[list], list]:
        """Run each block (a key of its slot, its commands) as one MULTI/EXEC, then the plain
        commands ``after`` (a key, the command), one round trip per node.

        Returns each block's replies (an exception in place of each command that failed; all of
        them when the transaction was aborted) and the replies of ``after``.
        """
        by_node: dict[int, tuple[redis.Redis, list[int], list[int]]] = {}
        for i, (key, _) in enumerate(blocks):
            client = self.node_of(key)
            by_node.setdefault(id(client.connection_pool), (client, [], []))[1].append(i)
        for i, (key, _) in enumerate(after):
            client = self.node_of(key)
            by_node.setdefault(id(client.connection_pool), (client, [], []))[2].append(i)
        block_replies: list[list] = [[] for _ in blocks]
        after_replies: list = [None] * len(after)
        for client, block_ids, after_ids in by_node.values():
            replies, plain = self._commit_on(client, [blocks[i][1] for i in block_ids],
                                             [after[i][1] for i in after_ids])
            for i, r in zip(block_ids, replies):
                block_replies[i] = r
            for i, r in zip(after_ids, plain):
                after_replies[i] = r
        return block_replies, after_replies

    def _commit_on(self, client: redis.Redis, blocks: list[list], after: list[tuple]) -> tuple[list[list], list]:
        if self.scripts:
            self._load_scripts(client)
        wire = []
        for commands in blocks:
            wire.append(("MULTI",))
            wire.extend(args for args, _ in commands)
            wire.append(("EXEC",))
        wire.extend(after)
        connection = client.connection_pool.get_connection()
        try:
            connection.send_packed_command(connection.pack_commands(wire))
            return [self._read_block(client, connection, len(c)) for c in blocks], \
                [self._read(client, connection) for _ in after]
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            raise
        finally:
            client.connection_pool.release(connection)

    @staticmethod
    def _read(client: redis.Redis, connection):
        # "_": no reply callback; the runner only looks for errors.
        try:
            return redis.Redis.parse_response(client, connection, "_")
        except ResponseError as exc:
            return exc

    def _read_block(self, client: redis.Redis, connection, count: int) -> list:
        self._read(client, connection)  # MULTI's OK
        queued = [self._read(client, connection) for _ in range(count)]
        reply = self._read(client, connection)
        if isinstance(reply, Exception):  # EXECABORT: a command was refused, nothing ran
            return [q if isinstance(q, Exception) else reply for q in queued]
        return list(reply)

    def _load_scripts(self, client: redis.Redis) -> None:
        scripts = list(self.scripts)
        known = client.script_exists(*[s.sha for s in scripts])
        for script, there in zip(scripts, known):
            if not there:
                script.sha = client.script_load(script.script)


class ShardTransaction(redis.client.Pipeline):
    """One shard's part of a ``SlotTransactions``; refuses keys of another slot."""

    def __init__(self, parent: SlotTransactions, tag: str):
        super().__init__(parent.connection_pool, parent.response_callbacks, True, None)
        self.parent = parent
        self.tag = tag
        self.slot = slot(tag)
        self.scripts = parent.scripts  # scripts registered here are loaded with the parent's

    def pipeline_execute_command(self, *args, **options) -> "ShardTransaction":
        keys = command_keys(args)
        outside = [k for k in keys if slot(k) != self.slot]
        if not keys or outside:
            raise CrossSlot(f"{_text(args[0])} on shard {self.tag} touches {outside or 'no key'}")
        self.parent._queue(self.slot, self.tag, args, options)
        return self

    def execute(self, raise_on_error: bool = True):
        raise TypeError("the consumer runner commits a handler's writes; a handler only queues them")
