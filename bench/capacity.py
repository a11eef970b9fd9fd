"""Bytes per member, per connection, per follow edge, per post and per timeline entry, measured
on the single-node stores for docs/capacity.md.

N members, each connected to exactly ``--degree`` others (a ring lattice: member i to the
``degree / 2`` next and previous ones), are loaded through the services' own code:

- connections store: ``services.connections.store.load_connections`` (the bulk loader: both
  sides' sorted sets and projections, one pair record per pair);
- follows store: every connection followed both ways (the automatic follow), through the
  FOLLOW script (the follower's side) and PROJECT_FOLLOWER (the followee's), plus the
  replica of the connection (the set and the pair version the connections handler keeps);
- feed store: the audience replica, FOLLOW_SIDE on both sides of each follow and PAIR_SIDE on
  both sides of each connection; posts through the feed API (``POST /v1/posts``);
- cache: a timeline per member filled to ``timeline_cap`` entries through FAN_OUT;
- member replicas: ``shared.members.register_many`` in each of the five services keeping one.

Scripts run pipelined by SHA; the outbox streams they append to and the per-member write limits
are left out of the figures (the relay trims the one, the others expire within seconds). Each key is measured with ``MEMORY USAGE key SAMPLES 0``
(every element counted) and summed by kind (the key's third part: ``following``,
``relationship``...), then divided. Member ids are 12 characters.

    .venv/bin/python -m bench.capacity [--members 1000] [--degree 300] [--posts 2000]
"""
from __future__ import annotations

import argparse
import time
import uuid
from collections import defaultdict

from bench.support import REPLICAS, bench_settings, token_for, write_results
from services.connections import store as connection_keys
from services.feed import store as feed_keys
from services.feed.app import create_app as feed_app
from services.follows import following as follows_following
from services.follows import store as follow_keys
from shared import members, store_client
from shared.bus.outbox import Outbox

BATCH = 2_000


def lattice(n: int, degree: int) -> list[tuple[int, int]]:
    return [(i, (i + d) % n) for i in range(n) for d in range(1, degree // 2 + 1)]


def by_sha(pipe, script, keys: dict, **args) -> None:
    key_list, arg_list = script.pack(keys, args)
    pipe.evalsha(script.sha, len(key_list), *key_list, *arg_list)


def pipelined(client, items, queue) -> float:
    """Queue ``queue(pipe, item)`` for every item, BATCH at a time; returns the seconds taken."""
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n, item in enumerate(items, start=1):
        queue(pipe, item)
        if n % BATCH == 0:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def measure(client, service: str, run: str) -> dict[str, dict]:
    """``service``'s keys of this run (their names hold the run's member ids), by kind: count and
    bytes (two services may share a database)."""
    kinds: dict[str, dict] = defaultdict(lambda: {"keys": 0, "bytes": 0})
    names = list(client.scan_iter(match=f"{service}:*{run}*", count=10_000))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.execute_command("MEMORY", "USAGE", name, "SAMPLES", "0")
    for name, size in zip(names, pipe.execute()):
        text = name.decode() if isinstance(name, bytes) else name
        kind = text.split(":")[2] if text.count(":") >= 2 else text
        if kind == "outbox" or kind.startswith("bench-"):
            continue  # the outbox streams and the namespaced write limits: transient
        kinds[kind]["keys"] += 1
        kinds[kind]["bytes"] += size or 0
    return dict(sorted(kinds.items()))


def total(kinds: dict, *names: str) -> int:
    return sum(kinds[k]["bytes"] for k in (names or kinds) if k in kinds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--degree", type=int, default=300)
    parser.add_argument("--posts", type=int, default=2_000)
    args = parser.parse_args()
    settings = bench_settings()
    run = uuid.uuid4().hex[:5]
    ids = [f"{run}{i:07d}" for i in range(args.members)]
    pairs = [(ids[a], ids[b]) for a, b in lattice(args.members, args.degree)]
    edges = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]  # follower, followee
    at = int(time.time() * 1000)
    stores = {s: store_client.connect(settings.store_url(s), decode_responses=False) for s in REPLICAS}
    cache = store_client.connect(settings.cache_url, decode_responses=False)
    timings = {}
    print(f"{args.members} members, {len(pairs)} connections, {len(edges)} follow edges (run {run})")

    # Member replicas (measured first, alone: every later kind is another service's or kind).
    replica_bytes = {}
    for service in REPLICAS:
        members.register_many(stores[service], service, settings, ids)
        replica_bytes[service] = measure(stores[service], service, run).get("member", {"bytes": 0})["bytes"]

    # connections
    conn = stores["connections"]
    neighbours: dict[str, dict[str, int]] = defaultdict(dict)
    for a, b in pairs:
        neighbours[a][b] = at
        neighbours[b][a] = at
    timings["connections_load_s"] = pipelined(conn, ids, lambda p, m: connection_keys.load_connections(
        p, m, neighbours[m]))

    # follows: both follows of every connection, and the replica of the connection
    fol = stores["follows"]
    for script in (follow_keys.FOLLOW, follow_keys.PROJECT_FOLLOWER):
        fol.script_load(script.source)
    outbox = Outbox("follows", settings)

    def follow(pipe, edge):
        a, b = edge
        by_sha(pipe, follow_keys.FOLLOW, follows_following._follow_keys(outbox, a, b),
               **follows_following.follow_args(outbox, a, b, None, "connection", at))
        by_sha(pipe, follow_keys.PROJECT_FOLLOWER, {"followers": follow_keys.followers(b),
                                                     "versions": follow_keys.followers_version(b)},
               follower=a, version=1, since=at)

    def follows_replica(pipe, edge):
        a, b = edge
        pipe.sadd(follow_keys.connections(a), b)
        pipe.set(follow_keys.pair_version(a, b), 1)

    timings["follows_load_s"] = pipelined(fol, edges, follow) + pipelined(fol, edges, follows_replica)

    # feed: the audience replica, then posts through the API
    feed = stores["feed"]
    for script in (feed_keys.FOLLOW_SIDE, feed_keys.PAIR_SIDE):
        feed.script_load(script.source)

    def audience(pipe, edge):
        a, b = edge
        by_sha(pipe, feed_keys.FOLLOW_SIDE, {"edges": feed_keys.following(a), "version": feed_keys.follow_version(a, b)},
               member=b, score=at, version=1, present="1")
        by_sha(pipe, feed_keys.FOLLOW_SIDE, {"edges": feed_keys.followers(b), "version": feed_keys.follower_version(b, a)},
               member=a, score=at, version=1, present="1")
        by_sha(pipe, feed_keys.PAIR_SIDE, {"connections": feed_keys.connections(a), "hidden": feed_keys.hidden(a),
                                          "disconnections": feed_keys.disconnections(a),
                                          "version": feed_keys.pair_version(a, b)},
               other=b, change="connect", version=1, at=at, keep=100)

    timings["feed_audience_load_s"] = pipelined(feed, edges, audience)
    before_posts = measure(feed, "feed", run)
    api = feed_app({"TESTING": True}, settings=settings).test_client()
    post_ids = []
    started = time.perf_counter()
    authors = ids[:max(1, args.posts // 10)]
    for n in range(args.posts):
        author = authors[n % len(authors)]
        response = api.post("/v1/posts", json={"text": "A post of about a hundred characters, the length of a "
                                                       "typical short update on a professional network."},
                            headers={"Authorization": f"Bearer {token_for(settings, author)}"})
        assert response.status_code == 201, response.get_json()
        post_ids.append(response.get_json()["id"])
    timings["posts_s"] = time.perf_counter() - started

    # cache: a full timeline for every member, of real post ids
    cache.script_load(feed_keys.FAN_OUT.source)
    cap = settings.timeline_cap
    entries = []
    for n, post_id in enumerate(post_ids[:cap]):
        entries += [at + n, post_id]

    def fill(pipe, member):
        pipe.zadd(feed_keys.timeline(member), {feed_keys.LIVE: "inf"})
        for start in range(0, len(entries), 200):
            by_sha(pipe, feed_keys.FAN_OUT, {"timelines": [feed_keys.timeline(member)]}, cap=cap,
                   entries=entries[start:start + 200])

    timeline_members = ids[:min(len(ids), 500)]
    timings["timelines_s"] = pipelined(cache, timeline_members, fill)

    kinds = {"connections": measure(conn, "connections", run), "follows": measure(fol, "follows", run),
             "feed": measure(feed, "feed", run), "cache": measure(cache, "feed", run)}
    posts_kinds = {k: {"keys": v["keys"] - before_posts.get(k, {"keys": 0})["keys"],
                       "bytes": v["bytes"] - before_posts.get(k, {"bytes": 0})["bytes"]}
                   for k, v in kinds["feed"].items() if v != before_posts.get(k)}
    entries_per_timeline = cache.zcard(feed_keys.timeline(timeline_members[0])) - 1
    c = len(pairs)
    figures = {
        "members": args.members, "degree": args.degree, "connections": c, "follow_edges": len(edges),
        "posts": len(post_ids), "timelines": len(timeline_members), "entries_per_timeline": entries_per_timeline,
        "member_id_chars": len(ids[0]), "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "kinds": kinds, "posts_kinds": posts_kinds,
        "member_replica_bytes_per_member": {s: round(b / args.members, 1) for s, b in replica_bytes.items()},
        "per_connection_bytes": {
            "connections": round((total(kinds["connections"]) - replica_bytes["connections"]) / c, 1),
            # two follow edges and the replica's two sides per connection
            "follows": round((total(kinds["follows"]) - replica_bytes["follows"]) / c, 1),
            "feed_audience": round((total(before_posts) - replica_bytes["feed"]) / c, 1),
        },
        "per_post_bytes": round(sum(v["bytes"] for v in posts_kinds.values()) / len(post_ids), 1),
        "per_timeline_entry_bytes": round(total(kinds["cache"]) / (len(timeline_members) * entries_per_timeline), 1),
        "per_full_timeline_bytes": round(total(kinds["cache"]) / len(timeline_members)),
    }
    write_results("capacity", figures)
    cleanup(list(stores.values()) + [cache], run)


def cleanup(clients, run: str) -> None:
    for client in clients:
        batch = list(client.scan_iter(match=f"*{run}*", count=10_000))
        for start in range(0, len(batch), 10_000):
            client.delete(*batch[start:start + 10_000])


if __name__ == "__main__":
    main()
