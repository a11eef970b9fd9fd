"""The event path on this machine.

1. Relay throughput: events/s through one outbox relay (Redis stream → Kafka, acks=all,
   idempotent), from a pre-filled outbox until it is empty.
2. Write-to-notification latency: PUT /v1/following/{member} through gunicorn at a steady
   rate; from the 2xx to the new_follower notification being readable through the
   notifications API (both workers running as their own processes), p50/p99.

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

import redis
import requests

from bench.support import bench_settings, gunicorn, percentiles, settings_env, token_for, write_results
from shared.bus.outbox import Outbox, OutboxRelay, relay_until_empty
from shared.bus.producer import make_producer
from shared.events import new_event
from shared.settings import REPO_ROOT


def relay_throughput(settings, count: int) -> dict:
    store = redis.Redis.from_url(settings.store_url("follows"), decode_responses=True)
    outbox = Outbox("follows", settings)
    store.delete(outbox.key)
    with store.pipeline(transaction=False) as pipe:
        for i in range(count):
            outbox.add(pipe, new_event("follows", "follow.created", {
                "follower": f"f{i % 997}", "followee": f"e{i}", "reason": "explicit",
                "since": "2026-11-26T10:00:00.000Z"}))
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
    env = settings_env(settings)
    workers = [subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", s], cwd=REPO_ROOT, env=env,
                                start_new_session=True) for s in ("follows", "notifications")]
    run = uuid.uuid4().hex[:6]
    pending: dict[str, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    try:
        with gunicorn("follows", settings) as follows_url, gunicorn("notifications", settings) as notes_url:
            time.sleep(3)  # let both workers join their consumer groups before the clock starts
            follower = f"ada-{run}"
            token = token_for(settings, follower)

            def watch():
                session = requests.Session()
                while not done.is_set() or pending:
                    with lock:
                        waiting = list(pending.items())
                    for followee, sent in waiting:
                        r = session.get(f"{notes_url}/v1/notifications?limit=1",
                                        headers={"Authorization": f"Bearer {token_for(settings, followee)}"})
                        if r.ok and r.json()["items"]:
                            seen = time.perf_counter()
                            with lock:
                                pending.pop(followee, None)
                            latencies.append(seen - sent)
                    if done.is_set() and time.perf_counter() - last_sent > 30:
                        break

            watchers = [threading.Thread(target=watch, daemon=True) for _ in range(2)]
            last_sent = time.perf_counter()
            for w in watchers:
                w.start()
            session = requests.Session()
            headers = {"Authorization": f"Bearer {token}"}
            interval = 1.0 / rate
            start = time.perf_counter()
            errors = 0
            for i in range(rate * seconds):
                target = start + i * interval
                delay = target - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                followee = f"m{i}-{run}"
                r = session.put(f"{follows_url}/v1/following/{followee}", headers=headers)
                acked = time.perf_counter()
                if r.status_code == 201:
                    with lock:
                        pending[followee] = acked
                else:
                    errors += 1
                last_sent = acked
            achieved = rate * seconds / (time.perf_counter() - start)
            done.set()
            for w in watchers:
                w.join(60)
    finally:
        for w in workers:
            os.killpg(w.pid, 15)
            w.wait(20)
    return {"target_writes_per_s": rate, "achieved_writes_per_s": round(achieved, 1), "seconds": seconds,
            "errors": errors, "never_notified": len(pending), **percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    settings = bench_settings()
    figures = {
        "relay": relay_throughput(settings, 20_000 if args.quick else 100_000),
        "write_to_notification": write_to_notification(settings, rate=200, seconds=5 if args.quick else 20),
        "aims": {"relay_events_per_s": ">= 5000", "write_to_notification_p99_ms": "<= 250"},
    }
    write_results("event_path", figures)


if __name__ == "__main__":
    main()
