"""The event path on this machine.

1. Relay throughput: events/s through one outbox relay (Redis stream → Kafka, acks=all,
   idempotent), from a pre-filled outbox until it is empty.
2. Write-to-notification latency: PUT /v1/following/{member} through gunicorn (as the stack
   runs it) at a steady rate, each follow a new pair; from each 201 to the followee's
   new_follower notification being stored, polled in the notifications store. Both workers
   run as their own processes.

Run: python -m bench.event_path [--quick]. Needs `rapport up --infra-only`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid

import requests

from bench.support import (bench_settings, gunicorn, percentiles, register, settings_env, token_for,
                           write_results)
from services.notifications import store as notes_keys
from shared.bus.outbox import Outbox, OutboxRelay, relay_until_empty
from shared.bus.producer import make_producer
from shared.events import new_event
from shared.settings import REPO_ROOT
from shared import store_client


def relay_throughput(settings, count: int) -> dict:
    store = store_client.connect(settings.store_url("follows"))
    outbox = Outbox("follows", settings)
    store.delete(outbox.key)
    with store.pipeline(transaction=False) as pipe:
        for i in range(count):
            outbox.add(pipe, new_event("follows", "follow.created", {
                "follower": f"f{i % 997}", "followee": f"e{i}", "reason": "explicit",
                "since": "2026-11-26T10:00:00.000Z", "version": 1}))
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
    relay = OutboxRelay(outbox, store, lambda: make_producer(settings))
    relay._holds_lease()
    started = time.perf_counter()
    relay_until_empty(relay, timeout=600)
    elapsed = time.perf_counter() - started
    relay._reset_producer()
    return {"events": count, "seconds": round(elapsed, 3), "events_per_s": round(count / elapsed, 1)}


def write_to_notification(settings, rate: int, seconds: int) -> dict:
    """Members follow members at a steady rate, each pair new; a watcher polls the
    notifications store (one pipelined round trip for every follow still waiting) for the moment
    each followee's new_follower notification is stored."""
    env = settings_env(settings)
    workers = [subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", s], cwd=REPO_ROOT, env=env,
                                start_new_session=True) for s in ("follows", "notifications")]
    run = uuid.uuid4().hex[:6]
    pairs = [(f"f{i}-{run}", f"e{i}-{run}") for i in range(rate * seconds)]
    register(settings, [m for pair in pairs for m in pair])
    tokens = {follower: token_for(settings, follower) for follower, _ in pairs}
    notes = store_client.connect(settings.store_url("notifications"))
    waiting: dict[str, float] = {}  # followee → when the follow's 201 was read
    latencies: list[float] = []
    lock = threading.Lock()
    sending = threading.Event()
    sending.set()

    def watch():
        while sending.is_set() or waiting:
            with lock:
                batch = list(waiting.items())
            if not batch:
                time.sleep(0.0005)
                continue
            with notes.pipeline(transaction=False) as pipe:
                for followee, _ in batch:
                    pipe.exists(notes_keys.inbox(followee))
                stored = pipe.execute()
            now = time.perf_counter()
            with lock:
                for (followee, acked), found in zip(batch, stored):
                    if found:
                        latencies.append(now - acked)
                        waiting.pop(followee, None)
            if not sending.is_set() and time.perf_counter() - finished > 30:
                return

    errors = 0
    finished = float("inf")
    try:
        with gunicorn("follows", settings) as follows_url:
            time.sleep(3)  # let both workers join their consumer groups before the clock starts
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            session = requests.Session()
            interval = 1.0 / rate
            start = time.perf_counter()
            for i, (follower, followee) in enumerate(pairs):
                delay = start + i * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                r = session.put(f"{follows_url}/v1/following/{followee}",
                                headers={"Authorization": f"Bearer {tokens[follower]}"})
                if r.status_code == 201:
                    with lock:
                        waiting[followee] = time.perf_counter()
                else:
                    errors += 1
            achieved = len(pairs) / (time.perf_counter() - start)
            finished = time.perf_counter()
            sending.clear()
            watcher.join(40)
    finally:
        for w in workers:
            os.killpg(w.pid, 15)
            w.wait(20)
    return {"target_writes_per_s": rate, "achieved_writes_per_s": round(achieved, 1), "seconds": seconds,
            "errors": errors, "never_notified": len(waiting),
            "measured": "201 of PUT /v1/following read by the client → the followee's notification stored",
            **percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    # Each part in a namespace of its own: the relay's events must not become a backlog that
    # the latency part's workers would have to consume first.
    figures = {
        "relay": relay_throughput(bench_settings(), 20_000 if args.quick else 100_000),
        "write_to_notification": write_to_notification(bench_settings(), rate=200, seconds=5 if args.quick else 20),
        "aims": {"relay_events_per_s": ">= 5000", "write_to_notification_p99_ms": "<= 250"},
    }
    write_results("event_path", figures)


if __name__ == "__main__":
    main()
