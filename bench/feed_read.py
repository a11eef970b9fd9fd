"""Feed read: GET /v1/feed (20 hydrated posts) under gunicorn at 32 connections, beside
/healthz on the same server in the same run.

The server runs as the stack runs it: ``gunicorn -c deploy/gunicorn.conf.py`` (gthread
workers; WEB_CONCURRENCY and RAPPORT_GUNICORN_THREADS, or --workers/--threads, override).

    .venv/bin/python -m bench.feed_read [--quick] [--workers N] [--threads N] [--runs N]
"""
from __future__ import annotations

import argparse
import uuid

import requests

from bench.feed_support import clients, forget, seed_followers
from bench.support import bench_settings, gunicorn_config, process_tree_cpu, served, token_for, wrk, write_results
from services.feed import posts
from shared.bus.outbox import Outbox


def redis_cpu(*clients) -> float:
    """CPU seconds the Redis servers behind ``clients`` have used (user + system)."""
    total = 0.0
    for client in clients:
        info = client.info("cpu")
        total += info["used_cpu_user"] + info["used_cpu_sys"]
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3-second wrk runs instead of 10")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, help="threads per worker (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--runs", type=int, default=3, help="/healthz + feed pairs measured (the spread)")
    args = parser.parse_args()
    seconds = 3 if args.quick else 10
    settings = bench_settings()
    store, cache = clients(settings)
    run = uuid.uuid4().hex[:6]
    readers = [f"reader{i}-{run}" for i in range(32)]
    authors = [f"author{i}-{run}" for i in range(40)]
    outbox = Outbox("feed", settings)
    for author in authors:
        seed_followers(store, author, readers)
        for i in range(5):  # liked, commented, some for connections only (not shown to the readers)
            post = posts.publish(store, outbox, author, f"post {i} by {author} " + "words " * 40,
                                 "connections" if i == 4 else "public")
            posts.set_like(store, outbox, author if i == 4 else readers[i], post.id, like=True)
    store.delete(outbox.key)  # no relay runs in this benchmark: nothing to publish
    tokens = {r: token_for(settings, r) for r in readers}
    try:
        config = gunicorn_config(args.workers, args.threads)
        with served("feed", settings, args.workers, args.threads) as (base, pid):
            for reader in readers:  # first reads build the timelines
                response = requests.get(f"{base}/v1/feed", headers={"Authorization": f"Bearer {tokens[reader]}"})
                assert response.status_code == 200 and len(response.json()["items"]) == 20, response.text
            wrk(f"{base}/v1/feed", token=tokens[readers[0]], seconds=1)  # warm every worker and thread

            def measured(path: str, token: str | None = None) -> dict:
                # CPU per request of the API's processes, and of the two Redis servers (whole
                # servers: anything else they serve meanwhile counts too): where the time goes,
                # in figures the shared machine's noise moves less than it moves rps.
                before, redis_before = process_tree_cpu(pid), redis_cpu(store, cache)
                figures = wrk(f"{base}{path}", token=token, seconds=seconds)
                per_request = 1000 / max(1, figures["requests"])
                figures["server_cpu_ms_per_request"] = round((process_tree_cpu(pid) - before) * per_request, 3)
                figures["redis_cpu_ms_per_request"] = round((redis_cpu(store, cache) - redis_before) * per_request, 3)
                return figures

            runs = []
            for _ in range(args.runs):  # /healthz and the feed back to back, so each pair saw the same machine
                health = measured("/healthz")
                feed = measured("/v1/feed", tokens[readers[0]])
                # The CPU ratio moves less than the rps ratio with the machine's other load.
                runs.append({"healthz": health, "feed": feed,
                             "ratio_feed_to_healthz": round(feed["rps"] / health["rps"], 3),
                             "cpu_ratio_healthz_to_feed": round(health["server_cpu_ms_per_request"]
                                                                / max(feed["server_cpu_ms_per_request"], 1e-9), 3)})
                print(runs[-1])
        ratios = [r["ratio_feed_to_healthz"] for r in runs]
        cpu_ratios = [r["cpu_ratio_healthz_to_feed"] for r in runs]
        figures = {**runs[-1], "ratio_min": min(ratios), "ratio_max": max(ratios),
                   "cpu_ratio_min": min(cpu_ratios), "cpu_ratio_max": max(cpu_ratios),
                   "feed_p99_ms_min": min(r["feed"]["p99_ms"] for r in runs),
                   "feed_p99_ms_max": max(r["feed"]["p99_ms"] for r in runs),
                   "aim_ratio": 0.5, "aim_p99_ms": 25, "posts_per_page": 20,
                   "gunicorn": {"config": "deploy/gunicorn.conf.py", **config}, "connections": 32,
                   "runs": runs}
        write_results("feed_read_quick" if args.quick else "feed_read", figures)
    finally:
        forget(cache, readers)


if __name__ == "__main__":
    main()
