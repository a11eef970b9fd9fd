"""Counting a piece of code's Redis round trips in a test process where other clients (the
session's in-process workers) may be writing to Redis at the same time."""
from __future__ import annotations

import threading
from typing import Callable, Iterable

import redis


def round_trips(clients: Iterable[redis.Redis], f: Callable[[], object]) -> int:
    """How many times ``f()`` writes to a socket of one of ``clients``' connection pools (a
    command, or a whole pipeline), from the thread that calls it: only its own, whatever else
    runs meanwhile (a client may be shared with in-process workers)."""
    pools = [client.connection_pool for client in clients]
    caller = threading.get_ident()
    sent = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, *args, **kwargs):
        if threading.get_ident() == caller and any(self in pool._in_use_connections for pool in pools):
            sent.append(1)
        return original(self, *args, **kwargs)

    redis.connection.AbstractConnection.send_packed_command = counting
    try:
        f()
    finally:
        redis.connection.AbstractConnection.send_packed_command = original
    return len(sent)


def app_clients(test_client) -> list[redis.Redis]:
    """The Redis clients of a service app's requests: its store's and its write limits'."""
    extensions = test_client.application.extensions
    limits = extensions["rapport.write_limits"]
    return [extensions["rapport.store"], *([limits.store] if limits else [])]
