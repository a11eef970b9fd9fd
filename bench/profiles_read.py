"""Benchmark: profile reads and name search, with 100,000 registered members.

Loads the members straight into the bench store (``services.profiles.store.load_member``,
the search index as the worker files it: ``search.entry`` under each of ``search.prefixes``,
and a few connections for the readers), pipelined, no HTTP; then, through gunicorn as the
stack runs it (``bench.support.gunicorn``), measures with wrk:

- GET /v1/members/{id}/profile over random members (a reader with connections: full and
  limited views mixed): p50/p99 and requests/s as a ratio to /healthz on the same server in
  the same run (aims: p99 <= 5 ms, ratio >= 0.6);
- GET /v1/members?q= over type-ahead queries cut from real names ("ada lov", "grac"): p99
  (aim <= 20 ms).

    .venv/bin/python -m bench.profiles_read [--members 100000] [--seconds 10] [--keep]

The profiles keys are deleted at the end unless ``--keep`` (the bench database is shared with
the follows benchmark, so only ``profiles:*`` goes).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from urllib.parse import quote

import redis

from bench.support import bench_settings, gunicorn, gunicorn_config, token_for, write_results, wrk
from services.profiles import search
from services.profiles.store import Keys, load_member

FIRST = ["Ada", "Grace", "Alan", "Barbara", "Edsger", "Donald", "Frances", "Margaret", "Katherine", "Dorothy",
         "Linus", "Guido", "Bjarne", "Radia", "Sophie", "Zoë", "Chloé", "José", "Søren", "Anaïs", "Hedy", "John",
         "Claude", "Ken", "Dennis", "Niklaus", "Tim", "Vint", "Leslie", "Shafi", "Fei-Fei", "Yoshua", "Andrés"]
LAST = ["Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Knuth", "Allen", "Hamilton", "Johnson", "Vaughan",
        "Torvalds", "van Rossum", "Stroustrup", "Perlman", "Wilson", "Núñez", "Ångström", "Lamarr", "McCarthy",
        "Shannon", "Thompson", "Ritchie", "Wirth", "Berners-Lee", "Cerf", "Lamport", "Goldwasser", "Bengio",
        "Müller", "García", "Kierkegaard", "Brontë", "Okafor", "Nakamura", "Kowalski", "Øster", "Dubois"]
SKILLS = ["Python", "Lua", "Compilers", "Distributed systems", "Redis", "Kafka", "Mathematics", "Leadership",
          "Writing", "Statistics", "Machine learning", "Typography", "Security", "Databases", "Networks"]
BASE_MS = 1_700_000_000_000
BATCH = 2_000


def member_id(i: int) -> str:
    return f"m{i:06d}"


def profile(rng: random.Random, i: int) -> tuple[str, str, dict]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    headline = f"{rng.choice(['Engineer', 'Researcher', 'Manager', 'Designer'])} at {rng.choice(LAST)} & Co"
    doc = {"name": name, "headline": headline, "location": "London", "industry": "Software",
           "about": "A few lines about the member. " * 8, "contact": {"email": f"{member_id(i)}@example.org"},
           "experience": [{"title": "Engineer", "organization": rng.choice(LAST), "start": "2015-01",
                           "end": "2019-12", "description": "Built things. " * 10},
                          {"title": "Lead", "organization": rng.choice(LAST), "start": "2020-01"}],
           "education": [{"school": "University", "degree": "BSc", "field": "Computing"}],
           "skills": rng.sample(SKILLS, 6), "accomplishments": [{"kind": "award", "title": "Best paper"}]}
    return name, headline, doc


def load(client: redis.Redis, keys: Keys, n: int, readers: list[int], rng: random.Random) -> dict:
    started = time.perf_counter()
    names = []
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        name, headline, doc = profile(rng, i)
        names.append(name)
        load_member(pipe, keys, member_id(i), json.dumps(doc, separators=(",", ":")), name, headline, BASE_MS)
        entry = search.entry(name, member_id(i))
        for prefix in search.prefixes(name):
            pipe.zadd(keys.names(prefix), {entry: 0})
        if i % BATCH == BATCH - 1:
            pipe.execute()
    for reader in readers:  # 150 connections each, the network's average
        for other in rng.sample(range(n), 150):
            pipe.sadd(keys.connections(member_id(reader)), member_id(other))
            pipe.sadd(keys.connections(member_id(other)), member_id(reader))
            pipe.hset(keys.connection_names(member_id(reader)), member_id(other),
                      search.entry(names[other], member_id(other)))
            pipe.hset(keys.connection_names(member_id(other)), member_id(reader),
                      search.entry(names[reader], member_id(reader)))
    pipe.execute()
    return {"members": n, "load_seconds": round(time.perf_counter() - started, 1), "names": names}


def queries(names: list[str], rng: random.Random, count: int) -> list[str]:
    """Type-ahead queries as people type them: a first name and the start of a last, or a prefix."""
    out = []
    for name in rng.sample(names, count):
        first, _, last = name.partition(" ")
        choice = rng.random()
        if choice < 0.4:
            q = f"{first} {last[:3]}"
        elif choice < 0.7:
            q = first[:4]
        else:
            q = last[:5]
        out.append(q)
    return out


def delete_profiles_keys(client: redis.Redis) -> None:
    batch = []
    for key in client.scan_iter("profiles:*", count=10_000):
        batch.append(key)
        if len(batch) >= 10_000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    settings = bench_settings()
    keys = Keys(settings.shards)
    client = redis.Redis.from_url(settings.store_url("profiles"), decode_responses=True)
    delete_profiles_keys(client)
    readers = rng.sample(range(args.members), 10)
    loaded = load(client, keys, args.members, readers, rng)
    names = loaded.pop("names")
    reader = member_id(readers[0])
    profile_paths = [f"/v1/members/{member_id(i)}/profile" for i in rng.sample(range(args.members), 2000)]
    # the reader's own connections among them: full views beside the limited ones
    profile_paths += [f"/v1/members/{m}/profile" for m in list(client.smembers(keys.connections(reader)))[:100]]
    rng.shuffle(profile_paths)
    search_paths = [f"/v1/members?q={quote(q)}" for q in queries(names, rng, 1000)]
    token = token_for(settings, reader)
    try:
        with gunicorn("profiles", settings, workers=args.workers) as base:
            wrk(f"{base}/healthz", seconds=2)  # warm up every worker
            health = wrk(f"{base}/healthz", seconds=args.seconds, connections=args.connections)
            reads = wrk(f"{base}/v1/members/x/profile", token=token, seconds=args.seconds, paths=profile_paths,
                        connections=args.connections)
            found = wrk(f"{base}/v1/members", token=token, seconds=args.seconds, paths=search_paths,
                        connections=args.connections)
            # One request at a time: the latency of a read itself, without queueing behind the others.
            reads_alone = wrk(f"{base}/v1/members/x/profile", token=token, seconds=args.seconds, paths=profile_paths,
                              connections=1, threads=1)
            found_alone = wrk(f"{base}/v1/members", token=token, seconds=args.seconds, paths=search_paths,
                              connections=1, threads=1)
    finally:
        if not args.keep:
            delete_profiles_keys(client)
    ratio = round(reads["rps"] / health["rps"], 3) if health["rps"] else None
    # The machine's load when the figures were taken: on a shared machine they say as much as it allows.
    load_average = [round(x, 1) for x in os.getloadavg()]
    write_results("profiles_read", {
        **loaded, "load_average_at_end": load_average, "gunicorn": gunicorn_config(args.workers),
        "wrk_connections": args.connections,
        "healthz": health, "profile_read": reads, "profile_read_ratio_to_healthz": ratio, "search": found,
        "profile_read_one_at_a_time": reads_alone, "search_one_at_a_time": found_alone,
        "aims": {"profile_read_p99_ms": 5, "profile_read_ratio_to_healthz": 0.6, "search_p99_ms": 20},
    })


if __name__ == "__main__":
    main()
