"""The profiles outbox, one stream per shard, and the worker's task that relays them all.

Every write of the profiles store puts its event on the outbox stream of its own shard
(``outbox.key_for(tag)``, ``outbox:<service>:{s17}``), so each script touches one slot. Until
the shared bus relays sharded outboxes itself, this task does it for profiles: one thread that
waits on every shard's stream with one XREAD and publishes each non-empty one through an
``OutboxRelay`` (its own lease per stream, one Kafka producer for all). That XREAD names
streams of many slots, which only a single Redis node allows; on a cluster the shared relay
takes over.
"""
from __future__ import annotations

import threading

import redis
from kafka import KafkaProducer
from kafka.errors import KafkaError

from shared.bus.outbox import LeaseLost, Outbox, OutboxRelay
from shared.bus.producer import make_producer
from shared.logs import get_logger
from shared.settings import Settings
from shared.slots import all_tags

log = get_logger(__name__)


class ShardedOutbox(Outbox):
    """The service's outbox with a stream per shard."""

    def key_for(self, tag: str) -> str:
        return f"{self.key}:{tag}"

    def shard(self, tag: str) -> Outbox:
        """The outbox of one shard's stream, for its relay."""
        one = Outbox(self.service, self.settings)
        one.key = self.key_for(tag)
        one.lease_key = f"{one.key}:relay-lease"
        return one

    def pending_everywhere(self, client: redis.Redis) -> int:
        with client.pipeline(transaction=False) as pipe:
            for tag in all_tags(self.settings.shards):
                pipe.xlen(self.key_for(tag))
            return sum(pipe.execute())


def outbox(settings: Settings) -> ShardedOutbox:
    return ShardedOutbox("profiles", settings)


def relay_shards(settings: Settings):
    """The worker task: relay every shard's stream until ``stop`` is set."""
    def run(stop: threading.Event, store: redis.Redis) -> None:
        sharded = outbox(settings)
        current: list[KafkaProducer] = []

        def producer() -> KafkaProducer:
            # One producer for every shard's relay; a relay that closed it after an error gets a new one.
            if not current or getattr(current[0], "_closed", False):
                current[:] = [make_producer(settings)]
            return current[0]

        # No linger: the streams are relayed one after another, a pause each would add up.
        relays = {sharded.key_for(t): OutboxRelay(sharded.shard(t), store, producer)
                  for t in all_tags(settings.shards)}
        backoff = 0.2
        while not stop.is_set():
            try:
                ready = store.xread({key: "0-0" for key in relays}, count=1, block=1000)
                held = False
                for key, _ in ready or []:
                    relay = relays[key]
                    if relay._holds_lease():  # the relay's own lease rule, per stream
                        held = True
                        relay.publish_batch(block_ms=None)
                if ready and not held:
                    # Another worker holds these streams' leases: wait as OutboxRelay.run does, not spin.
                    stop.wait(next(iter(relays.values())).lease_ms / 4000)
                backoff = 0.2
            except (KafkaError, redis.RedisError, OSError, LeaseLost) as exc:
                log.warning("profiles outbox relay waiting", error=repr(exc), retry_in=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        if current:
            current[0].close(timeout=2)
    return run
