"""Connecting to a store or the cache: one Redis node, or a Redis Cluster.

``redis://host:port/db`` is one node (the default of the local stack);
``redis+cluster://host:port[,host:port…]`` is a Redis Cluster, reached through redis-py's
cluster client from any of the nodes given (it discovers the rest). Every service, worker,
test and benchmark gets its clients here.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

CLUSTER_SCHEME = "redis+cluster"


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


def connect(url: str, *, decode_responses: bool = True, **options) -> redis.Redis | RedisCluster:
    """A client for ``url``: ``redis.Redis`` for one node, ``RedisCluster`` for a cluster."""
    if is_cluster(url):
        parts = urlsplit(url)
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in cluster_nodes(url)],
                            decode_responses=decode_responses, username=parts.username or None,
                            password=parts.password or None, **options)
    return redis.Redis.from_url(url, decode_responses=decode_responses, **options)
