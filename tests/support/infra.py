"""Reaching the real Kafka and Redis from tests, and failing loudly when they are absent."""
from __future__ import annotations

import socket
import time
from typing import Callable, TypeVar

import pytest
import redis
from redis.exceptions import RedisClusterException
from kafka import KafkaConsumer, TopicPartition

from shared.events import Event, PoisonEvent, UnknownEventType, decode
from shared.settings import Settings
from shared.store_client import is_cluster
from shared import store_client

T = TypeVar("T")


def require_infrastructure(settings: Settings) -> None:
    """Fail the session with a clear message when Redis or Kafka cannot be reached."""
    problems = []
    for name, url in (("Redis store", settings.store_url("follows")), ("Redis cache", settings.cache_url)):
        try:
            store_client.connect(url, socket_connect_timeout=2, decode_responses=False).ping()
        except (redis.RedisError, RedisClusterException) as exc:
            problems.append(f"{name} at {url} is unreachable ({exc})")
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as exc:
        problems.append(f"Kafka at {settings.kafka_bootstrap} is unreachable ({exc})")
    if problems:
        start = "`rapport up --cluster --infra-only`" if is_cluster(settings.cache_url) \
            else "`rapport up --infra-only` (or run `make test`)"
        pytest.exit("These tests need the real Kafka and Redis: " + "; ".join(problems)
                    + f". Start them with {start}.", returncode=3)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free at this moment (held together while chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def eventually(probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.05,
               message: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = None  # type: ignore[assignment]
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")


def next_millisecond() -> None:
    """Wait for the clock's next millisecond: lists ordered by time (ms) order writes of one
    millisecond by id, so a test of "newest first" gives each write a millisecond of its own."""
    start = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 == start:
        time.sleep(0.0002)


def read_topic(settings: Settings, topic: str, until: Callable[[list], bool], timeout: float = 20.0,
               raw: bool = False) -> list:
    """Read ``topic`` (namespaced) from the beginning until ``until(records)`` holds.

    Returns decoded events (or raw ConsumerRecords with ``raw=True``).
    """
    name = settings.topic(topic)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=500)
    try:
        partitions = eventually(lambda: consumer.partitions_for_topic(name), 10, message=f"topic {name}")
        tps = [TopicPartition(name, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    if raw:
                        records.append(record)
                        continue
                    try:
                        records.append(decode(record.value, record.key))
                    except (PoisonEvent, UnknownEventType):
                        continue
            if until(records):
                return records
        raise AssertionError(f"{name}: condition not met within {timeout}s; read {len(records)} records")
    finally:
        consumer.close()


def events_of(events: list[Event], name: str, **data) -> list[Event]:
    """The events named ``name`` whose data has every field of ``data``."""
    return [e for e in events if e.name == name and all(e.data.get(k) == v for k, v in data.items())]


class EventPublisher:
    """Publishes events as their producing service's relay would: to the type's (namespaced)
    topic, under the event's key. Tests stand in for services that are not part of them."""

    def __init__(self, settings: Settings):
        from kafka import KafkaProducer

        self.settings = settings
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")

    def __call__(self, *events: Event) -> None:
        from shared.events import encode
        from shared.events.catalogue import BY_TYPE

        for event in events:
            self.producer.send(self.settings.topic(BY_TYPE[event.type].topic), key=event.key.encode(),
                               value=encode(event))
        self.producer.flush(10)

    def close(self) -> None:
        self.producer.close()


_versions = __import__("itertools").count(1)


def next_version() -> int:
    """A version for an event a test publishes in a producer's stead, greater than every one
    handed out before in this session: a pair's events are then versioned in the order the test
    builds them, as the producing store would number them (only the order within an aggregate
    matters, so one counter serves them all)."""
    return next(_versions)
