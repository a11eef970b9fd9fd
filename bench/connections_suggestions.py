"""Benchmark: people you may know (GET /v1/suggestions) on the generated network.

Builds the 100,000-member graph of ``bench.connections_network`` (its generator and loader,
imported) in the bench store, then measures, p50/p99, over the real Redis:

- compute: ``suggestions.compute``, the bounded computation the connections worker pays per
  member (twice per invitation.accepted / connection.removed / block event);
- worker_event: what the worker's handler adds to one event's MULTI/EXEC (``suggestions.queue_refresh``
  of both members, run at EXEC; the worker's refresh loop then pays a ``compute`` for each), for
  pairs of such members;
- precomputed: ``suggestions.page`` (what the view calls) on the list the worker kept: the
  steady state of GET /v1/suggestions;
- precomputed_old: the same on a list older than the refresh bound (served, and the member
  queued once for the worker);
- no_list: ``suggestions.page`` with no list kept, so the read computes it (a member's first
  read ever, or a read racing the worker after their own change): the rare cold read;

for typical members (median degree) and for members with about 5,000 connections (a
synthetic one is added when the graph has none close enough). Aim: p99 <= 50 ms on reads.

    .venv/bin/python -m bench.connections_suggestions [--quick] [--keep]
"""
from __future__ import annotations

import argparse
import random
import time

import redis

from bench.connections_network import build, connected_at, member_name
from bench.support import bench_settings, percentiles, write_results
from services.connections import store as keys
from services.connections import suggestions
from shared.clock import now_ms
from shared import store_client

HEAVY = 5_000


def heavy_members(client: redis.Redis, adjacency: list[list[int]], rng: random.Random, want: int) -> list[str]:
    """Members with about HEAVY connections; synthetic ones are connected to random members if needed."""
    n = len(adjacency)
    degrees = {i: len(set(adjacency[i])) for i in range(n)}
    found = [member_name(i) for i, d in degrees.items() if abs(d - HEAVY) <= HEAVY // 10][:want]
    pipe = client.pipeline(transaction=False)
    while len(found) < want:
        name = f"heavy{len(found):03d}"
        for v in rng.sample(range(n), HEAVY):
            keys.add_connection(pipe, name, member_name(v), connected_at(0, v))
        pipe.execute()
        found.append(name)
    return found


def _timed(members: list[str], rounds: int, before, call) -> dict:
    durations, sizes = [], []
    for _ in range(rounds):
        for member in members:
            before(member)
            t0 = time.perf_counter()
            result = call(member)
            durations.append(time.perf_counter() - t0)
            if isinstance(result, tuple):
                sizes.append(len(result[0]))
    figures = percentiles(durations)
    if sizes:
        figures["mean_items"] = round(sum(sizes) / len(sizes), 1)
    return figures


def measure(client: redis.Redis, members: list[str], rounds: int, read_rounds: int) -> dict:
    """The worker's cost and the read path's latencies for ``members`` (see the module docstring)."""
    def forget(member):
        client.delete(keys.suggestions(member), keys.suggestions_state(member))

    def age(member):
        client.hset(keys.suggestions_state(member), "computed_at",
                    now_ms() - suggestions.REFRESH_AFTER_MS - 1)

    def worker_event(pair):
        with client.pipeline(transaction=True) as tx:
            suggestions.queue_refresh(client, tx, pair, now_ms())
            tx.execute()
        client.zrem(keys.suggestions_due(), *pair)  # no refresh loop runs here

    nothing = lambda member: None  # noqa: E731
    read = lambda member: suggestions.page(client, member, 20, None)  # noqa: E731
    pairs = list(zip(members[0::2], members[1::2]))
    figures = {
        "compute": _timed(members, rounds, forget, lambda m: suggestions.compute(client, m)),
        "worker_event": _timed(pairs, rounds, nothing, worker_event),
        "precomputed": _timed(members, read_rounds, nothing, read),
        "precomputed_old": _timed(members, 1, age, read),
        "no_list": _timed(members, rounds, forget, read),
    }
    client.delete(keys.suggestions_due())  # the queued members: no worker runs here
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10,000-member graph and fewer samples")
    parser.add_argument("--keep", action="store_true", help="leave the graph in the bench store")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    typical_count, heavy_count, rounds = (100, 3, 3) if args.quick else (300, 10, 5)

    settings = bench_settings()
    client = store_client.connect(settings.store_url("connections"))
    print(f"bench store {settings.store_url('connections')}; {n} members")
    graph, adjacency = build(client, n, args.seed)
    rng = random.Random(args.seed)
    by_degree = sorted(range(n), key=lambda i: len(adjacency[i]))
    middle = by_degree[n // 2 - typical_count // 2: n // 2 + typical_count // 2]
    typical = [member_name(i) for i in middle]
    heavy = heavy_members(client, adjacency, rng, heavy_count)
    heavy_degrees = [client.zcard(keys.connections(m)) for m in heavy]

    figures = {"quick": args.quick, "graph": graph,
               "typical": {"members": len(typical), "degree": len(adjacency[middle[0]]),
                           **measure(client, typical, 1, rounds)},
               "heavy": {"members": len(heavy), "degree_min": min(heavy_degrees), "degree_max": max(heavy_degrees),
                         **measure(client, heavy, rounds, rounds)},
               "bounds": {"neighbours": suggestions.NEIGHBOURS, "walk_budget": suggestions.WALK_BUDGET,
                          "candidates": suggestions.CANDIDATES, "refresh_after_ms": suggestions.REFRESH_AFTER_MS,
                          "keep_ms": suggestions.KEEP_MS},
               "aims": {"p99_ms": 50}}
    for who in ("typical", "heavy"):
        print(f"  {who}: {figures[who]['members']} members")
        for what in ("compute", "worker_event", "precomputed", "precomputed_old", "no_list"):
            print(f"    {what:16} {figures[who][what]}")
    write_results("connections_suggestions_quick" if args.quick else "connections_suggestions", figures)
    if not args.keep:
        client.flushdb(asynchronous=False)


if __name__ == "__main__":
    main()
