"""Feed read: GET /v1/feed (20 hydrated posts) under gunicorn at 32 connections, beside
/healthz on the same server in the same run.

    .venv/bin/python -m bench.feed_read [--quick]
"""
from __future__ import annotations

import argparse
import uuid

import requests

from bench.feed_support import clients, forget, seed_followers
from bench.support import bench_settings, gunicorn, token_for, wrk, write_results
from services.feed import posts
from shared.bus.outbox import Outbox


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3-second wrk runs instead of 10")
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
        with gunicorn("feed", settings, workers=2) as base:
            for reader in readers:  # first reads build the timelines
                response = requests.get(f"{base}/v1/feed", headers={"Authorization": f"Bearer {tokens[reader]}"})
                assert response.status_code == 200 and len(response.json()["items"]) == 20, response.text
            health = wrk(f"{base}/healthz", seconds=seconds)
            feed = wrk(f"{base}/v1/feed", token=tokens[readers[0]], seconds=seconds)
        figures = {"healthz": health, "feed": feed, "ratio_feed_to_healthz": round(feed["rps"] / health["rps"], 3),
                   "aim_ratio": 0.5, "aim_p99_ms": 25, "posts_per_page": 20, "gunicorn_workers": 2,
                   "connections": 32}
        write_results("feed_read_quick" if args.quick else "feed_read", figures)
    finally:
        forget(cache, readers)


if __name__ == "__main__":
    main()
