"""The outbox relay over 64 shards on this machine.

1. Idle cost: the CPU a relay holding every stream of a service (64 shards and the untagged
   stream) spends when there is nothing to publish, for each ``relay_idle_ms``, and the Redis
   commands it sends (one pipeline of one XRANGE per stream each round).
2. Throughput: events/s through one relay from a pre-filled outbox, the entries spread over
   the 64 shards' streams, beside the same number in the untagged stream alone.

Run: python -m bench.relay_shards [--quick]. Needs `rapport up --infra-only`.
"""
from __future__ import annotations

import argparse
import os
import resource
import threading
import time


from bench.support import bench_settings, write_results
from shared import store_client
from shared.bus.outbox import Outbox, OutboxRelay, relay_until_empty
from shared.bus.producer import make_producer
from shared.events import new_event
from shared.slots import all_tags


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def idle_cost(settings, store, idle_ms: int, seconds: float) -> dict:
    outbox = Outbox(f"follows-idle-{idle_ms}", settings)
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings), idle_ms=idle_ms)
    rounds = [0]
    read = relay._read

    def counted():
        rounds[0] += 1
        return read()

    relay._read = counted
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    time.sleep(1.0)  # it has taken every stream by now
    held = len(relay.held)
    before, rounds_before, started = cpu_seconds(), rounds[0], time.perf_counter()
    time.sleep(seconds)  # this thread sleeps: the process's CPU is the relay's
    cpu, elapsed, n = cpu_seconds() - before, time.perf_counter() - started, rounds[0] - rounds_before
    stop.set()
    thread.join(10)
    return {"idle_ms": idle_ms, "streams_held": held, "cpu_percent_of_a_core": round(100 * cpu / elapsed, 2),
            "reads_per_s": round(n / elapsed, 1), "redis_commands_per_s": round(n * held / elapsed, 1)}


def fill(store, outbox, keys: list[str], count: int) -> None:
    with store.pipeline(transaction=False) as pipe:
        for i in range(count):
            event = new_event("follows", "follow.created", {
                "follower": f"f{i % 997}", "followee": f"e{i}", "reason": "explicit",
                "since": "2026-11-26T10:00:00.000Z", "version": 1})
            pipe.xadd(keys[i % len(keys)], outbox.fields(event))
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()


def throughput(settings, store, sharded: bool, count: int) -> dict:
    outbox = Outbox(f"follows-{'sharded' if sharded else 'untagged'}", settings)
    keys = [outbox.key_for(t) for t in all_tags(settings.shards)] if sharded else [outbox.key]
    fill(store, outbox, keys, count)
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings), linger_ms=settings.relay_linger_ms)
    relay._holds_lease()
    started = time.perf_counter()
    relay_until_empty(relay, timeout=600)
    elapsed = time.perf_counter() - started
    relay._reset_producer()
    relay.release()
    return {"streams": len(keys), "events": count, "seconds": round(elapsed, 3),
            "events_per_s": round(count / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    settings = bench_settings()
    store = store_client.connect(settings.store_url("follows"))
    seconds, count = (3.0, 5_000) if options.quick else (10.0, 20_000)
    # The machine is shared: its load says how far to trust the figures.
    figures = {"shards": settings.shards, "load_average_1m_before": round(os.getloadavg()[0], 2),
               "idle": [idle_cost(settings, store, ms, seconds) for ms in (10, 50, 100)],
               "throughput": [throughput(settings, store, sharded, count) for sharded in (False, True)]}
    figures["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    for row in figures["idle"]:
        print(f"idle relay, {row['streams_held']} streams, every {row['idle_ms']} ms: "
              f"{row['cpu_percent_of_a_core']}% of a core, {row['redis_commands_per_s']} Redis commands/s")
    for row in figures["throughput"]:
        print(f"relay throughput over {row['streams']} stream(s): {row['events_per_s']} events/s")
    write_results("relay_shards", figures)


if __name__ == "__main__":
    main()
