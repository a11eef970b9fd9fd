"""Follows graph benchmark: follow/unfollow throughput through gunicorn, followers page and
stats latency for a member with 1,000,000 followers (100,000 with --quick) and for one with
10, and Redis memory per follow edge.

    .venv/bin/python -m bench.follows_graph [--quick]

The big audience is loaded straight into the bench store with pipelining, through the
keys of services/follows/store.py (both sides of each edge, as a follow writes them).
Aim: stats and first page p99 <= 5 ms at any follower count (stats is two ZCARDs).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid

import redis

from bench.support import bench_settings, gunicorn, percentiles, register, token_for, wrk, write_results
from services.follows import store as keys
from services.follows.following import followers_page, stats
from shared.bus.outbox import Outbox
from shared.clock import now_ms
from shared import store_client

LOAD_BATCH = 10_000

# wrk cycles through followees, each connection alternating PUT (follow) and DELETE (unfollow).
FOLLOW_CYCLE = """
wrk.headers["Authorization"] = "Bearer %(token)s"
local n = %(followees)d
local i = 0
request = function()
  i = i + 1
  local followee = "%(prefix)s-" .. (math.floor((i - 1) / 2) %% n + 1)
  local method = (i %% 2 == 1) and "PUT" or "DELETE"
  return wrk.format(method, "/v1/following/" .. followee)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%f %%f %%f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99)))
end
"""


def follow_cycle(base: str, token: str, prefix: str, seconds: int) -> dict:
    """Follow/unfollow throughput: wrk with the FOLLOW_CYCLE script."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(FOLLOW_CYCLE % {"token": token, "followees": 1000, "prefix": prefix})
    try:
        out = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", f"{seconds}s", "-s", script.name, base + "/"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    reqs, status_errors, socket_errors, duration_us, p50, p99 = re.search(
        r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out).groups()
    return {"requests": int(reqs), "non_2xx": int(status_errors), "socket_errors": int(socket_errors),
            "rps": round(int(reqs) / (float(duration_us) / 1e6), 1),
            "p50_ms": round(float(p50) / 1000, 3), "p99_ms": round(float(p99) / 1000, 3)}


def load_followers(store: redis.Redis, member: str, fan_prefix: str, count: int) -> float:
    """Write ``count`` follow edges to ``member`` (both sides), pipelined; returns seconds taken."""
    started = time.perf_counter()
    base = now_ms() - count
    for start in range(0, count, LOAD_BATCH):
        with store.pipeline(transaction=False) as pipe:
            batch = {}
            for i in range(start, min(start + LOAD_BATCH, count)):
                fan = f"{fan_prefix}-{i}"
                batch[fan] = base + i
                pipe.zadd(keys.following(fan), {member: base + i})
            pipe.zadd(keys.followers(member), batch)
            pipe.execute()
    return time.perf_counter() - started


def used_memory(store: redis.Redis) -> int:
    return int(store.info("memory")["used_memory"])


def direct_latency(store: redis.Redis, member: str, samples: int) -> dict:
    """The store's share of the latency: the rule functions called in-process, one at a time."""
    page, counts = [], []
    for _ in range(samples):
        t = time.perf_counter()
        followers_page(store, member, member, 20, None)
        page.append(time.perf_counter() - t)
        t = time.perf_counter()
        stats(store, member)
        counts.append(time.perf_counter() - t)
    return {"first_page": percentiles(page), "stats": percentiles(counts)}


def http_latency(base: str, settings, member: str, seconds: int) -> dict:
    """Sequential requests (one connection), so the figures are latency, not queueing."""
    token = token_for(settings, member)
    return {
        "first_page": wrk(f"{base}/v1/members/{member}/followers", token, seconds=seconds, connections=1, threads=1),
        "stats": wrk(f"{base}/v1/members/{member}/follow-stats", token, seconds=seconds, connections=1, threads=1),
    }


def delete_edges(store: redis.Redis, member: str, fan_prefix: str, count: int) -> None:
    for start in range(0, count, LOAD_BATCH):
        with store.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + LOAD_BATCH, count)):
                pipe.unlink(keys.following(f"{fan_prefix}-{i}"))
            pipe.execute()
    store.unlink(keys.followers(member))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 followers and shorter runs")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    big = 100_000 if args.quick else 1_000_000
    seconds = 5 if args.quick else 10
    settings = bench_settings()
    store = store_client.connect(settings.store_url("follows"))
    run = uuid.uuid4().hex[:6]
    celebrity, small = f"bench-{run}-celebrity", f"bench-{run}-small"
    fans, few = f"bench-{run}-fan", f"bench-{run}-few"
    figures: dict = {"followers_big": big}
    try:
        before = used_memory(store)
        figures["load_seconds"] = round(load_followers(store, celebrity, fans, big), 1)
        grown = used_memory(store) - before
        figures["memory"] = {"bytes_total": grown, "bytes_per_edge": round(grown / big, 1),
                             "note": "an edge is two sorted-set entries: followers:{followee}, following:{follower}"}
        load_followers(store, small, few, 10)
        figures["direct"] = {"big": direct_latency(store, celebrity, 2000), "ten": direct_latency(store, small, 2000)}
        with gunicorn("follows", settings) as base:
            figures["http"] = {"big": http_latency(base, settings, celebrity, seconds),
                               "ten": http_latency(base, settings, small, seconds)}
            cycler = f"bench-{run}-cycler"
            register(settings, [f"bench-{run}-star-{i}" for i in range(1, 1001)])
            figures["follow_unfollow"] = follow_cycle(base, token_for(settings, cycler), f"bench-{run}-star",
                                                      seconds)
    finally:
        delete_edges(store, celebrity, fans, big)
        delete_edges(store, small, few, 10)
        for i in range(1, 1001):
            store.unlink(keys.followers(f"bench-{run}-star-{i}"))
        store.unlink(keys.following(f"bench-{run}-cycler"), keys.alerts(f"bench-{run}-cycler"))
        store.unlink(Outbox("follows", settings).key)  # no relay runs here: drop the queued events
    write_results("follows_graph_quick" if args.quick else "follows_graph", figures)


if __name__ == "__main__":
    main()
