"""Post-to-feed latency: an author with 1,000 followers posts while the fan-out worker is busy
with other posts (authors with 2,000 followers each, ten posts a second). p50/p99 from the
201 to the post in a follower's timeline.

    .venv/bin/python -m bench.feed_latency [--quick]
"""
from __future__ import annotations

import argparse
import random
import threading
import time
import uuid

from bench.feed_support import activate, clients, feed_workers, forget, seed_followers, wait_for
from bench.support import bench_settings, percentiles, register, token_for, write_results
from services.feed import store as keys
from services.feed.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="30 samples instead of 100")
    args = parser.parse_args()
    samples = 30 if args.quick else 100
    settings = bench_settings()
    store, cache = clients(settings)
    run = uuid.uuid4().hex[:6]
    author = f"author-{run}"
    fans = [f"fan{i}-{run}" for i in range(1_000)]
    noisy = [f"noisy{i}-{run}" for i in range(4)]
    crowd = [f"crowd{i}-{run}" for i in range(2_000)]
    register(settings, [author, *noisy])  # the authors' posts need their profiles
    seed_followers(store, author, fans)
    for member in noisy:
        seed_followers(store, member, crowd)
    activate(cache, settings, fans + crowd)
    client = create_app(settings=settings).test_client()
    lock = threading.Lock()  # one Flask test client, shared by two threads

    def publish(member: str) -> str:
        with lock:
            response = client.post("/v1/posts", json={"text": "now"},
                                   headers={"Authorization": f"Bearer {token_for(settings, member)}"})
        assert response.status_code == 201, response.json
        return response.json["id"]

    stop = threading.Event()
    background = {"posts": 0}

    def keep_busy():
        while not stop.is_set():
            publish(random.choice(noisy))
            background["posts"] += 1
            stop.wait(0.1)

    latencies = []
    try:
        with feed_workers(settings, 1):
            warm = publish(author)
            wait_for(lambda: cache.zscore(keys.timeline(fans[-1]), warm) is not None, timeout=120, interval=0.05)
            busy = threading.Thread(target=keep_busy, daemon=True)
            busy.start()
            time.sleep(1)  # let the background load build up
            for _ in range(samples):
                reader = random.choice(fans)
                post_id = publish(author)
                t0 = time.monotonic()
                done = wait_for(lambda: cache.zscore(keys.timeline(reader), post_id) is not None, timeout=60,
                                interval=0.001)
                latencies.append(done - t0)
                time.sleep(0.05)
            stop.set()
            busy.join()
        figures = {"followers": len(fans), "background_posts": background["posts"],
                   "background_audience_each": len(crowd), **percentiles(latencies),
                   "aim_p50_ms": 100, "aim_p99_ms": 500}
        write_results("feed_latency_quick" if args.quick else "feed_latency", figures)
    finally:
        forget(cache, fans + crowd)


if __name__ == "__main__":
    main()
