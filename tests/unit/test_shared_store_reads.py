"""``store_client.read_many`` without a server: what it sends, and a connection that breaks."""
from __future__ import annotations

import hiredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.store_client import read_many


class BreakingConnection:
    """A connection whose first ``breaks`` sends fail; then it answers ``answers``."""

    def __init__(self, breaks: int, retries: int, answers: list):
        self.retry = Retry(NoBackoff(), retries)
        self.breaks, self.answers, self.sent, self.disconnects, self.pending = breaks, answers, [], 0, []

    def send_packed_command(self, packed):
        if self.breaks:
            self.breaks -= 1
            raise redis.ConnectionError("reset by peer")
        self.sent.append(b"".join(packed))
        self.pending = list(self.answers)

    def read_response(self):
        return self.pending.pop(0)

    def disconnect(self):
        self.disconnects += 1


class OneConnectionPool:
    def __init__(self, connection):
        self.connection, self.released = connection, 0

    def get_connection(self):
        return self.connection

    def release(self, connection):
        self.released += 1


def client_of(connection):
    client = redis.Redis.__new__(redis.Redis)  # no pool of its own, no socket
    client.connection_pool = OneConnectionPool(connection)
    return client


def test_reads_go_packed_in_one_send_and_a_broken_connection_sends_them_again_as_the_client_retries():
    connection = BreakingConnection(breaks=1, retries=1, answers=[["1"], 0])
    client = client_of(connection)
    commands = [("HMGET", "p:{s1}", "a"), ("SISMEMBER", "l:{s1}", "ada")]
    assert read_many(client, commands) == [["1"], 0]
    assert connection.sent == [hiredis.pack_command(commands[0]) + hiredis.pack_command(commands[1])]
    assert connection.disconnects == 1 and client.connection_pool.released == 1


def test_a_connection_still_broken_after_the_clients_retries_raises_and_goes_back_to_the_pool():
    connection = BreakingConnection(breaks=3, retries=1, answers=[0])
    client = client_of(connection)
    with pytest.raises(redis.ConnectionError):
        read_many(client, [("SISMEMBER", "l:{s1}", "ada")])
    assert connection.disconnects == 2 and client.connection_pool.released == 1
