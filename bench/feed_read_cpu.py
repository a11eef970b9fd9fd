"""What a feed read costs in CPU, in one process, beside /healthz.

On a shared machine a throughput figure moves with everyone else's load; the CPU time one
process spends per request moves much less. Through the Flask test client (the same app, its
middleware and the real Redis; no gunicorn, no network client), each figure the median over
``--rounds`` rounds of the mean CPU time (``time.process_time``) of a request, the endpoints
taking turns within each round:

- ``healthz``: the floor every request pays (routing, request id, metrics, the log line).
- ``feed``: GET /v1/feed, a page of 20 hydrated posts, seeded as ``bench.feed_read`` seeds it
  (40 followed authors, 5 posts each, some liked, some for connections only).
- ``read_feed``: the rule alone (``timelines.read_feed``), without the HTTP around it.

Also the Redis round trips of one page (socket writes, counted). ``--compare DIR`` runs the
same measurement on the code of another checkout (e.g. ``/work/main``: its ``services`` and
``shared``, this script) in turns with this one, each in a process of its own, and writes both
side by side.

    .venv/bin/python -m bench.feed_read_cpu [--quick] [--compare DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid



def cpu_ms(f, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        f()
    return (time.process_time() - started) / n * 1000


def measure(n: int, rounds: int) -> dict:
    """The figures of this process's code (whatever ``services`` and ``shared`` it imports)."""
    from bench.feed_support import clients, forget, seed_followers
    from bench.support import round_trips, bench_settings, token_for
    from services.feed import posts
    from services.feed.app import create_app
    from services.feed.timelines import read_feed
    from shared.bus.outbox import Outbox

    settings = bench_settings()
    store, cache = clients(settings)
    run = uuid.uuid4().hex[:6]
    readers = [f"reader{i}-{run}" for i in range(4)]
    authors = [f"author{i}-{run}" for i in range(40)]
    outbox = Outbox("feed", settings)
    for author in authors:
        seed_followers(store, author, readers)
        for i in range(5):
            post = posts.publish(store, outbox, author, f"post {i} by {author} " + "words " * 40,
                                 "connections" if i == 4 else "public")
            posts.set_like(store, outbox, author if i == 4 else readers[i], post.id, like=True)
    store.delete(outbox.key)  # no relay runs here: nothing to publish
    app = create_app(settings=settings)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token_for(settings, readers[0])}"}
    app_store, timelines = app.extensions["rapport.store"], app.extensions["feed.timelines"]

    def healthz():
        client.get("/healthz")

    def feed():
        response = client.get("/v1/feed", headers=auth)
        assert response.status_code == 200 and len(response.get_json()["items"]) == 20

    def rule():
        assert len(read_feed(app_store, timelines, readers[0], 20, None)[0]) == 20

    try:
        measured = {"healthz": healthz, "feed": feed, "read_feed": rule}
        for f in measured.values():  # the timeline is built, every connection made
            for _ in range(max(n // 10, 20)):
                f()
        samples: dict[str, list[float]] = {name: [] for name in measured}
        for _ in range(rounds):
            for name, f in measured.items():
                samples[name].append(cpu_ms(f, n))
        figures = {f"{name}_cpu_ms": round(statistics.median(s), 3) for name, s in samples.items()}
        figures["healthz_to_feed_cpu_ratio"] = round(figures["healthz_cpu_ms"] / figures["feed_cpu_ms"], 3)
        figures["feed_round_trips"] = round_trips(feed)
        figures["spread"] = {f"{name}_cpu_ms": [round(x, 3) for x in s] for name, s in samples.items()}
        return figures
    finally:
        forget(cache, readers)


def _in_checkout(directory: str, n: int, rounds: int) -> dict:
    """``measure`` on the code of the checkout at ``directory``, in a process of its own."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(directory)}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--figures-only", "-n", str(n),
                          "--rounds", str(rounds)], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per round")
    parser.add_argument("-n", type=int, help="requests per endpoint and round (default 1000, --quick 300)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compare", metavar="DIR", help="also measure the checkout at DIR, in turns with this one")
    parser.add_argument("--figures-only", action="store_true", help=argparse.SUPPRESS)  # --compare's own runs
    args = parser.parse_args()
    n = args.n or (300 if args.quick else 1_000)
    if args.figures_only:
        from bench.support import drop_namespaces

        figures = measure(n, args.rounds)
        drop_namespaces()
        print(json.dumps(figures))
        return
    from bench.support import write_results

    name = "feed_read_cpu_quick" if args.quick else "feed_read_cpu"
    if not args.compare:
        write_results(name, {**measure(n, args.rounds), "requests_each": n, "rounds": args.rounds})
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    turns: dict[str, list[dict]] = {"this": [], "compared": []}
    for _ in range(2):  # in turns, so both saw the machine's load alike
        turns["this"].append(_in_checkout(here, n, args.rounds))
        turns["compared"].append(_in_checkout(args.compare, n, args.rounds))
        print({side: runs[-1]["healthz_to_feed_cpu_ratio"] for side, runs in turns.items()})

    def best(runs: list[dict]) -> dict:  # the run on the quieter machine: the lower /healthz
        return min(runs, key=lambda r: r["healthz_cpu_ms"])

    def commit(directory: str) -> str:
        return subprocess.run(["git", "-C", directory, "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True).stdout.strip()

    this, compared = best(turns["this"]), best(turns["compared"])
    write_results(name, {"this": {"commit": commit(here), **this},
                         "compared": {"commit": commit(args.compare), **compared},
                         "feed_cpu_this_to_compared": round(this["feed_cpu_ms"] / compared["feed_cpu_ms"], 3),
                         "requests_each": n, "rounds": args.rounds, "runs": turns})


if __name__ == "__main__":
    main()
