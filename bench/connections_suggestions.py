"""Benchmark: people you may know (GET /v1/suggestions) on the generated network.

Builds the 100,000-member graph of ``bench.connections_network`` (its generator and loader,
imported) in the bench store, then measures ``suggestions.page`` (what the view calls, over
the real Redis) p50/p99:

- cold: the member's cached list dropped before each call, so every call walks the graph;
- warm: the cached list read and re-checked (what a member paging or coming back sees);

for typical members (median degree) and for members with about 5,000 connections (a
synthetic one is added when the graph has none close enough). Aim: p99 <= 50 ms.

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


def measure(client: redis.Redis, members: list[str], rounds: int, cold: bool) -> dict:
    durations = []
    sizes = []
    for _ in range(rounds):
        for member in members:
            if cold:
                client.delete(keys.suggestions_basis(member), keys.suggestions(member))
            t0 = time.perf_counter()
            items, _ = suggestions.page(client, member, 20, None)
            durations.append(time.perf_counter() - t0)
            sizes.append(len(items))
    return {**percentiles(durations), "mean_items": round(sum(sizes) / max(1, len(sizes)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10,000-member graph and fewer samples")
    parser.add_argument("--keep", action="store_true", help="leave the graph in the bench store")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    typical_count, heavy_count, rounds = (100, 3, 3) if args.quick else (300, 10, 5)

    settings = bench_settings()
    client = redis.Redis.from_url(settings.store_url("connections"), decode_responses=True)
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
                           "cold": measure(client, typical, 1, cold=True),
                           "warm": measure(client, typical, rounds, cold=False)},
               "heavy": {"members": len(heavy), "degree_min": min(heavy_degrees), "degree_max": max(heavy_degrees),
                         "cold": measure(client, heavy, rounds, cold=True),
                         "warm": measure(client, heavy, rounds, cold=False)},
               "bounds": {"neighbours": suggestions.NEIGHBOURS, "walk_budget": suggestions.WALK_BUDGET,
                          "candidates": suggestions.CANDIDATES, "cache_ttl_ms": suggestions.CACHE_TTL_MS},
               "aims": {"p99_ms": 50}}
    for who in ("typical", "heavy"):
        print(f"  {who}: {figures[who]}")
    write_results("connections_suggestions_quick" if args.quick else "connections_suggestions", figures)
    if not args.keep:
        client.flushdb(asynchronous=False)


if __name__ == "__main__":
    main()
