"""The Kafka producer: one per process, made lazily (after any fork), idempotent, acks=all."""
from __future__ import annotations

import os
import threading

from kafka import KafkaProducer

from shared.settings import Settings

_lock = threading.Lock()
_producer: KafkaProducer | None = None
_pid: int | None = None


def make_producer(settings: Settings, **overrides) -> KafkaProducer:
    """A new producer with the delivery guarantees the outbox relies on, set explicitly."""
    config = dict(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        client_id=f"rapport-{os.getpid()}",
        acks="all",
        enable_idempotence=True,
        # Idempotence keeps order with up to 5 requests in flight per partition.
        max_in_flight_requests_per_connection=5,
        retries=2**31 - 1,
        linger_ms=5,
        batch_size=256 * 1024,
        max_block_ms=5_000,  # fail fast when Kafka is down: the outbox keeps the event
        request_timeout_ms=10_000,
        delivery_timeout_ms=30_000,
    )
    config.update(overrides)
    return KafkaProducer(**config)


def get_producer(settings: Settings) -> KafkaProducer:
    """This process's shared producer; a forked child gets a fresh one."""
    global _producer, _pid
    with _lock:
        if _producer is None or _pid != os.getpid():
            _producer = make_producer(settings)
            _pid = os.getpid()
        return _producer


def close_producer(timeout: float = 10.0) -> None:
    """Flush and close this process's producer (gunicorn ``worker_exit``, worker shutdown)."""
    global _producer, _pid
    with _lock:
        if _producer is not None and _pid == os.getpid():
            try:
                _producer.flush(timeout=timeout)
            finally:
                _producer.close(timeout=timeout)
        _producer = None
        _pid = None
