"""Connecting to a store or the cache: one Redis node, or a Redis Cluster.

``redis://host:port/db`` is one node (the default of the local stack);
``redis+cluster://host:port[,host:port…]`` is a Redis Cluster, reached through redis-py's
cluster client from any of the nodes given (it discovers the rest). Every service, worker,
test and benchmark gets its clients here.

What the cluster client does differently, and how the project lives with it:

- A MULTI/EXEC (``pipeline(transaction=True)``) and a script run on one slot's node only: the
  slot rule (``shared.slots``, ``shared.lua``) keeps every one of them in one slot.
- Pub/sub: ``PUBLISH`` on a cluster reaches the subscribers of every node (the cluster bus
  carries it), so the notifications bell works unchanged through ``pubsub()``.
- ``WAIT`` counts the replicas of the node it is sent to, for that connection's writes:
  ``wait_replicated`` sends it to every primary of the store, after a write of its own there.
"""
from __future__ import annotations

import itertools
from urllib.parse import urlsplit

import hiredis
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    ReadOnlyError,
    SlotNotCoveredError,
    TryAgainError,
)

from shared.slots import shard_tag, slot

CLUSTER_SCHEME = "redis+cluster"

# What a store answers while a node is down, restarting or being replaced by its replica: a
# command that failed so wrote nothing and is to be retried shortly, not reported as a bug. On a
# cluster, during a failover: CLUSTERDOWN, TRYAGAIN, MASTERDOWN, READONLY (a client still writing
# to the old primary, now a replica), a slot no live node serves yet, and MOVED or ASK reaching
# the caller from a transaction or a node's own pipeline (the cluster client follows a
# redirection of a plain command itself, and learns the new map from this one for the retry).
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, ClusterDownError, TryAgainError,
               MasterDownError, ReadOnlyError, SlotNotCoveredError, MovedError, AskError)


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme == CLUSTER_SCHEME


def cluster_nodes(url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` pairs of a ``redis+cluster://`` URL."""
    netloc = urlsplit(url).netloc.rsplit("@", 1)[-1]
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: each cluster node is host:port")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


def connect(url: str, *, decode_responses: bool = True, pool_size: int | None = None,
            pool_timeout: float | None = None, **options) -> redis.Redis | RedisCluster:
    """A client for ``url``: ``redis.Redis`` for one node, ``RedisCluster`` for a cluster.

    ``pool_size``: at most that many connections (per node, on a cluster); a command waits up
    to ``pool_timeout`` seconds for a free one instead of opening another.
    """
    if is_cluster(url):
        parts = urlsplit(url)
        nodes = cluster_nodes(url)
        if pool_size is not None:
            # Only a client made from a URL builds its nodes' pools with connection_pool_class.
            host, port = nodes[0]
            options.update(url=f"redis://{host}:{port}/0", connection_pool_class=redis.BlockingConnectionPool,
                           max_connections=pool_size, timeout=pool_timeout)
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes],
                            decode_responses=decode_responses, username=parts.username or None,
                            password=parts.password or None, **options)
    if pool_size is not None:
        pool = redis.BlockingConnectionPool.from_url(url, decode_responses=decode_responses,
                                                     max_connections=pool_size, timeout=pool_timeout, **options)
        return redis.Redis(connection_pool=pool)
    return redis.Redis.from_url(url, decode_responses=decode_responses, **options)


def read_many(client: redis.Redis | RedisCluster, commands: list[tuple]) -> list:
    """The replies to ``commands`` (each a read's words: ``("HMGET", key, *fields)``), sent in
    one round trip, as the connection's parser reads them, with no redis-py reply callbacks (a
    0/1 stays an int; on a cluster the cluster client's callbacks apply: read replies by value).

    For a hot read of many small commands (a feed page's posts): a redis-py pipeline spends about
    as much client CPU on each command's bookkeeping and packing as on the rest of it; here
    hiredis packs them all at once and the replies are read off one pooled connection.

    An error reply raises once every reply is read (the connection stays in step with the
    server). A connection that breaks is retried as the client retries its commands (its
    ``Retry``): these are reads, sending them again changes nothing. On a Redis Cluster: the
    cluster client's pipeline, which sends each node its commands and follows redirections.
    """
    if isinstance(client, RedisCluster):
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()
    packed = [b"".join([hiredis.pack_command(command) for command in commands])]
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        return connection.retry.call_with_retry(lambda: _exchange(connection, packed, len(commands)),
                                                lambda error: connection.disconnect())
    finally:
        pool.release(connection)


def _exchange(connection, packed: list[bytes], count: int) -> list:
    """Send ``packed`` and read its ``count`` replies; an error reply raises after the last."""
    connection.send_packed_command(packed)
    replies, error = [], None
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except redis.ResponseError as exc:
            replies.append(exc)
            error = error or exc
    if error is not None:
        raise error
    return replies


def primaries(client: redis.Redis | RedisCluster, prefix: str) -> list[tuple[redis.Redis, str]]:
    """Each primary of ``client`` as a plain client of that node, with a key of ``prefix`` that
    lives there (on a cluster: tagged with the first shard tag whose slot the node serves)."""
    if not isinstance(client, RedisCluster):
        return [(client, f"{prefix}:replicated")]
    found = []
    for node in client.get_primaries():
        tag = _NODE_TAGS.get(node.name)
        if tag is None or _node_of(client, tag) != node.name:  # first time, or the slots moved
            tag = next(t for t in map(shard_tag, itertools.count()) if _node_of(client, t) == node.name)
            _NODE_TAGS[node.name] = tag
        found.append((node.redis_connection or client.get_redis_connection(node), f"{prefix}:{tag}:replicated"))
    return found


_NODE_TAGS: dict[str, str] = {}  # a cluster node ("host:port") → a shard tag whose slot it serves


def _node_of(client: RedisCluster, tag: str) -> str:
    return client.nodes_manager.get_node_from_slot(slot(tag)).name


class NotReplicated(redis.RedisError):
    """A write is stored on its primary but fewer replicas than asked acknowledged it in time."""


def wait_replicated(client: redis.Redis | RedisCluster, replicas: int, timeout_ms: int, prefix: str) -> None:
    """Return once ``replicas`` replicas of every primary of ``client`` hold what it had written.

    ``WAIT`` counts the replicas that acknowledged the *calling connection's* last write, and a
    pooled client gives no guarantee of meeting again the connection that wrote. So on each
    primary one pipeline (one connection) writes a mark of its own (``<prefix>:{sN}:replicated``)
    and then WAITs: a replica applies a primary's writes in order, so once it has the mark it has
    every write that came before it, the request's among them. Raise ``NotReplicated`` else.
    """
    if replicas <= 0:
        return
    for node, mark in primaries(client, prefix):
        pipe = node.pipeline(transaction=False)
        pipe.incr(mark)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        acknowledged = pipe.execute()[-1]
        if acknowledged < replicas:
            kwargs = node.get_connection_kwargs()
            raise NotReplicated(f"{acknowledged} of {replicas} replicas of {kwargs.get('host')}:{kwargs.get('port')} "
                                f"acknowledged within {timeout_ms} ms")
