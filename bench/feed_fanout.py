"""Fan-out: a public post by an author with 100,000 followers (threshold raised for the run).

Measures the seconds from the 201 to the post in the last follower's timeline, and the
timeline inserts per second, beside raw pipelined ZADD (redis-benchmark) on the same cache
Redis in the same run. With the default ``fanout_inline_limit`` (100,000) the post.created
handler writes the whole audience itself in server-side batches; ``--inline-limit N`` sends
all but N members through feed.fanout, shared by the worker processes, to measure that path.
Posts are measured once every worker holds some of feed.events' and feed.fanout's partitions;
the last timeline of each batch is probed every 5 ms (to 5 ms), each only until it has the post.
The yardstick is the median of three redis-benchmark runs after each post. Each post also
gives the CPU seconds the stack's Kafka brokers used from its 201 to its last timeline.

``--cluster`` runs it on the cluster stack (``rapport up --cluster --infra-only``: the cache on
its Redis Cluster, Kafka on three brokers). ``--compare DIR`` also measures the checkout at DIR
(another commit's worktree), the two in turns, each in a process of its own, twice; figures in
``feed_fanout_compare.json`` (``_cluster`` with ``--cluster``).

    .venv/bin/python -m bench.feed_fanout [--quick] [--workers N] [--inline-limit N] [--runs N]
                                          [--cluster] [--compare DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

from kafka import KafkaAdminClient

ZADD_SAMPLES = 3

from bench.feed_support import activate, clients, feed_workers, forget, seed_followers, wait_for
from bench.support import BENCH_CACHE_DB, bench_settings, process_tree_cpu, register, token_for, write_results
from services.feed import store as keys
from services.feed.app import create_app


def redis_benchmark_zadd(settings, requests: int) -> float:
    """Pipelined ZADD throughput of the cache Redis, as redis-benchmark reports it."""
    port = settings.cache_url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run(["redis-benchmark", "-p", port, "--dbnum", str(BENCH_CACHE_DB), "-P", "64", "-n",
                          str(requests), "-r", "100000", "-q", "zadd", "bench-zadd:__rand_int__", "__rand_int__",
                          "m:__rand_int__"], capture_output=True, text=True, check=True).stdout
    return float(re.findall(r"([\d.]+) requests per second", out)[-1])


def drop_zadd_keys(cache) -> None:
    batch = []
    for key in cache.scan_iter("bench-zadd:*", count=10_000):
        batch.append(key)
        if len(batch) == 10_000:
            cache.delete(*batch)
            batch = []
    if batch:
        cache.delete(*batch)


def balanced(settings, consumer: str, members: int) -> bool:
    """Whether the consumer group of ``consumer`` is stable with ``members`` members, each
    holding some of its partitions: every worker shares the fan-out from the first post on."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        group = settings.group(consumer)
        described = admin.describe_groups([group])[group]
    finally:
        admin.close()
    if described.get("group_state") != "Stable" or len(described.get("members", [])) != members:
        return False
    return all(any(t["partitions"] for t in (m.get("member_assignment") or {}).get("assigned_partitions", []))
               for m in described["members"])


def brokers_cpu(settings) -> float:
    """CPU seconds used so far by the Kafka brokers of ``settings``' stack, found by their pid
    files (the cluster stack's settings name its own run directory)."""
    from shared.stack import processes

    run_dir = settings.run_dir
    pids = [processes.running_pid(run_dir, path.stem) for path in (run_dir / "pids").glob("kafka*.pid")]
    return sum(process_tree_cpu(pid) for pid in pids if pid)


def batch_ends(fans: list[str], size: int) -> list[str]:
    """The last member of each batch: the audience is read in follower-set order."""
    ordered = sorted(fans)
    return ordered[size - 1::size] + ([ordered[-1]] if len(ordered) % size else [])


def measure(settings, followers: int, workers: int, runs: int, zadd_requests: int, zadd=None) -> dict:
    """Seed ``followers`` followers and live timelines, run ``workers`` feed worker processes and
    time ``runs`` posts, each beside redis-benchmark's pipelined ZADD on the same cache (``zadd``:
    a function of the request count, by default the single-node one); cleans up after itself."""
    zadd = zadd or (lambda requests: redis_benchmark_zadd(settings, requests))
    store, cache = clients(settings)
    run = uuid.uuid4().hex[:6]
    author, warm_author = f"star-{run}", f"warm-{run}"
    fans = [f"fan{i}-{run}" for i in range(followers)]
    warm_fans = fans[:2 * settings.fanout_batch_size]
    print(f"seeding {followers} followers and live timelines ...")
    register(settings, [author, warm_author])  # the authors' posts need their profiles
    seed_followers(store, author, fans)
    seed_followers(store, warm_author, warm_fans)
    activate(cache, settings, fans)
    client = create_app(settings=settings).test_client()

    def publish(member: str) -> tuple[str, float]:
        """The post's id, and when it was first answered: on the cluster stack a 503
        ``store_not_replicated`` (no replica confirmed in time) has stored it already, and its
        fan-out is under way; the retry with the same Idempotency-Key gets its id."""
        headers = {"Authorization": f"Bearer {token_for(settings, member)}", "Idempotency-Key": uuid.uuid4().hex}
        answered = None
        for _ in range(10):
            response = client.post("/v1/posts", json={"text": "fan me out"}, headers=headers)
            answered = answered or time.monotonic()
            if response.status_code != 503:
                break
            time.sleep(0.05)
        assert response.status_code == 201, response.json
        return response.json["id"], answered

    def landed(post_id: str, ends: list[str]):
        waiting = list(ends)

        def probe():
            # Only the ends not seen yet: the probe shares the machine and the cache with the
            # fan-out it times, so it asks less and less as batches land.
            pipe = cache.pipeline(transaction=False)
            for member in waiting:
                pipe.zscore(keys.timeline(member), post_id)
            waiting[:] = [m for m, score in zip(waiting, pipe.execute()) if score is None]
            return not waiting
        return probe

    def one_run() -> dict:
        kafka_before = brokers_cpu(settings)
        post_id, t0 = publish(author)
        ends = batch_ends(fans, settings.fanout_batch_size)
        first = wait_for(lambda: any(cache.zscore(keys.timeline(e), post_id) is not None for e in ends[:3]),
                         timeout=300)
        done = wait_for(landed(post_id, ends), timeout=300, interval=0.005)
        seconds = done - t0
        kafka_cpu = brokers_cpu(settings) - kafka_before
        pipe = cache.pipeline(transaction=False)
        for fan in fans:
            pipe.zscore(keys.timeline(fan), post_id)
        delivered = sum(score is not None for score in pipe.execute())
        assert delivered == followers, f"only {delivered} of {followers} timelines got the post"
        # Same run, same Redis; the median of three, as one sample swings by a third on this machine.
        samples = [zadd(zadd_requests) for _ in range(ZADD_SAMPLES)]
        zadd_rps = statistics.median(samples)
        inserts = delivered / seconds
        return {"delivered": delivered, "seconds_201_to_last_timeline": round(seconds, 3),
                "seconds_201_to_first_batch": round(first - t0, 3), "timeline_inserts_per_s": round(inserts),
                "kafka_brokers_cpu_s": round(kafka_cpu, 3),
                "redis_benchmark_pipelined_zadd_per_s": round(zadd_rps),
                "redis_benchmark_samples": [round(s) for s in samples],
                "ratio_to_pipelined_zadd": round(inserts / zadd_rps, 3)}

    try:
        with feed_workers(settings, workers):
            warm_id, _ = publish(warm_author)  # consumers join their groups on this one
            wait_for(landed(warm_id, batch_ends(warm_fans, settings.fanout_batch_size)), timeout=120, interval=0.05)
            # Members joining one after the other rebalance the groups a few times: measured once
            # every worker holds some of feed.events' partitions (a post's first handler) and of
            # feed.fanout's (its batches); a post met by a rebalance waits for it to end.
            wait_for(lambda: all(balanced(settings, consumer, min(workers, settings.topic_partitions))
                                 for consumer in ("feed.posts", "feed.fanout")), timeout=120, interval=0.5)
            measured = []
            for _ in range(runs):
                measured.append(one_run())
                print(measured[-1])
        ratios = [r["ratio_to_pipelined_zadd"] for r in measured]
        return {"followers": followers, "workers": workers, "inline_limit": settings.fanout_inline_limit,
                "batch_size": settings.fanout_batch_size, **measured[-1],
                "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "kafka_brokers_cpu_s_median": statistics.median(r["kafka_brokers_cpu_s"] for r in measured),
                "aim_ratio": 0.5, "runs": measured}
    finally:
        forget(cache, fans)
        drop_zadd_keys(cache)
        store.delete(keys.followers(author), keys.followers(warm_author))
        for start in range(0, len(fans), 10_000):
            store.delete(*[keys.following(f) for f in fans[start:start + 10_000]])


def _settings(args, followers: int):
    overrides = {"fanout_threshold": 10 * followers}
    if args.inline_limit is not None:
        overrides["fanout_inline_limit"] = args.inline_limit
    if args.cluster:
        from bench.support import bench_cluster_settings

        return bench_cluster_settings(**overrides)
    return bench_settings(**overrides)


def _zadd(args, settings):
    if not args.cluster:
        return None
    from bench.cluster import cluster_zadd

    return cluster_zadd(settings)


def _in_checkout(directory: str, argv: list[str]) -> dict:
    """This benchmark on the code of the checkout at ``directory`` (its workers too), in a process of its own."""
    from shared.settings import load_settings

    # The stack this checkout runs (its pid files: the brokers' CPU), whichever checkout measures.
    env = {**os.environ, "PYTHONPATH": os.path.abspath(directory), "RAPPORT_RUN_DIR": str(load_settings().run_dir)}
    run = subprocess.run([sys.executable, os.path.abspath(__file__), "--figures-only", *argv], env=env,
                         cwd=os.path.abspath(directory), stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20,000 followers instead of 100,000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--inline-limit", type=int, help="fanout_inline_limit (default: the settings')")
    parser.add_argument("--runs", type=int, default=3, help="posts measured one after the other (the spread)")
    parser.add_argument("--cluster", action="store_true", help="on the cluster stack (rapport up --cluster)")
    parser.add_argument("--compare", metavar="DIR", help="also measure the checkout at DIR, in turns with this one")
    parser.add_argument("--figures-only", action="store_true", help=argparse.SUPPRESS)  # --compare's own runs
    args = parser.parse_args()
    followers = 20_000 if args.quick else 100_000
    requests_ = 200_000 if args.quick else 1_000_000
    name = "feed_fanout_quick" if args.quick else "feed_fanout"
    if args.compare:
        argv = [a for a in sys.argv[1:] if a not in ("--compare", args.compare)]
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        turns: dict[str, list[dict]] = {"this": [], "compared": []}
        for _ in range(2):  # in turns, so both saw the machine's load alike
            turns["this"].append(_in_checkout(here, argv))
            turns["compared"].append(_in_checkout(args.compare, argv))
        summary = {side: {"ratio_median": statistics.median(r["ratio_to_pipelined_zadd"] for t in runs for r in t["runs"]),
                          "seconds_median": statistics.median(r["seconds_201_to_last_timeline"]
                                                              for t in runs for r in t["runs"]),
                          "kafka_brokers_cpu_s_median": statistics.median(r["kafka_brokers_cpu_s"]
                                                                          for t in runs for r in t["runs"])}
                   for side, runs in turns.items()}
        print(json.dumps(summary, indent=2))
        write_results(f"{name}_compare{'_cluster' if args.cluster else ''}",
                      {"compared": os.path.abspath(args.compare), "summary": summary, "turns": turns})
        return
    settings = _settings(args, followers)
    figures = measure(settings, followers, args.workers, args.runs, requests_, zadd=_zadd(args, settings))
    if args.figures_only:
        from bench.support import drop_namespaces

        drop_namespaces()
        print(json.dumps(figures))
        return
    if args.cluster:
        name += "_cluster"
    write_results(name if args.inline_limit is None else f"{name}_via_topic", figures)


if __name__ == "__main__":
    main()
