"""Freshness under a steady mixed write load: how long a post takes to reach every follower's
feed, and how far behind the consumers fall, while the stack takes accepted invitations and
posts at a steady rate (by default 100 accepts and 50 posts a second).

The stack runs as ``bench.write_cost`` runs it (every API under gunicorn, every worker as its
own process, on the benchmark's own Redis databases and Kafka namespace). Before the load:
``--authors`` members each get ``--followers`` followers through the follows API (with live
timelines, as a first read leaves them), and one pending invitation is sent for every accept
to come. Then a paced sender (an open loop: each request leaves at its scheduled time, on a
pool of connections) accepts the invitations and posts, in turn among the authors, for
``--seconds``.

- post → feed: from a post's 201 to the moment the last of its author's followers has it in
  their timeline (the cache is polled every ``POLL_S``, in one pipelined round trip);
- consumer lag: every ``LAG_EVERY_S`` each consumer group's committed offsets are compared
  with its partitions' ends (``bench.support.EventPath``), in records and in seconds (how long
  ago the oldest record a group has not committed was appended: the first sample that saw
  the end past the committed offset). Offsets are committed about once a second
  (``consumer_commit_interval_ms``), so this lag includes up to a second of commit delay.
  ``worst_by_second``: per second of the run, the worst lag sampled and whose it was.

    python -m bench.freshness [--seconds 10] [--accepts 100] [--posts 50] [--authors 20] [--followers 25]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import threading
import time
import uuid

import requests

from bench.support import bench_settings, percentiles, register, stop_on_sigterm, token_for, write_results
from bench.write_cost import Stack
from services.feed import store as feed_keys
from shared import store_client

POLL_S = 0.05
LAG_EVERY_S = 0.25


def _auth(settings, member: str) -> dict:
    return {"Authorization": f"Bearer {token_for(settings, member)}"}


def setup(stack: Stack, tag: str, authors: int, followers: int, accepts: int) -> tuple[dict, list]:
    """Authors with followers (live timelines), and the pending invitations to accept."""
    settings, urls = stack.settings, stack.urls
    audience = {f"author{a}-{tag}": [f"fan{a}x{f}-{tag}" for f in range(followers)] for a in range(authors)}
    cache = store_client.connect(settings.cache_url, decode_responses=False)
    with cache.pipeline(transaction=False) as pipe:
        for fans in audience.values():
            for fan in fans:
                pipe.zadd(feed_keys.timeline(fan), {feed_keys.LIVE: "inf"})
        pipe.execute()
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def follow(pair):
        author, fan = pair
        session().put(f"{urls['follows']}/v1/following/{author}", headers=_auth(settings, fan)).raise_for_status()

    def invite(i):
        reply = session().post(f"{urls['connections']}/v1/invitations", json={"invitee": f"accepter{i}-{tag}"},
                               headers=_auth(settings, f"asker{i}-{tag}"))
        reply.raise_for_status()
        return f"accepter{i}-{tag}", reply.json()["id"]

    # Every member registered at once, as a bulk load does: writes need registered members.
    register(settings, [*audience, *(fan for fans in audience.values() for fan in fans),
                        *(f"{who}{i}-{tag}" for i in range(accepts) for who in ("asker", "accepter"))])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(follow, [(a, fan) for a, fans in audience.items() for fan in fans]))
        invitations = list(pool.map(invite, range(accepts)))
    store = store_client.connect(settings.store_url("feed"), decode_responses=False)
    deadline = time.monotonic() + 120
    while any(store.zcard(feed_keys.followers(a)) < len(fans) for a, fans in audience.items()):
        if time.monotonic() > deadline:
            raise RuntimeError("the feed did not learn the followers")
        time.sleep(0.2)
    return audience, invitations


class Watcher:
    """Polls the followers' timelines for the posts sent; records each post's time to its last follower."""

    def __init__(self, settings, audience: dict):
        self.cache = store_client.connect(settings.cache_url)
        self.audience = audience
        self.pending: dict[str, tuple[float, list[str]]] = {}  # post id → (201 time, followers without it)
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.sending = True

    def sent(self, post_id: str, author: str, at: float) -> None:
        with self.lock:
            self.pending[post_id] = (at, list(self.audience[author]))

    def run(self, timeout: float) -> None:
        deadline = None
        while self.sending or self.pending:
            if not self.sending:
                deadline = deadline or time.monotonic() + timeout
                if time.monotonic() > deadline:
                    break
            with self.lock:
                batch = list(self.pending.items())
            if batch:
                with self.cache.pipeline(transaction=False) as pipe:
                    for post_id, (_, fans) in batch:
                        for fan in fans:
                            pipe.zscore(feed_keys.timeline(fan), post_id)
                    found = iter(pipe.execute())
                now = time.monotonic()
                with self.lock:
                    for post_id, (at, fans) in batch:
                        left = [fan for fan in fans if next(found) is None]
                        if left:
                            self.pending[post_id] = (at, left)
                        else:
                            del self.pending[post_id]
                            self.latencies.append(now - at)
            time.sleep(POLL_S)


class LagSampler:
    """Samples every consumer group's lag, in records and in seconds (see the module's docstring)."""

    def __init__(self, stack: Stack):
        self.path = stack.path
        self.history: list[tuple[float, dict]] = []  # (time, end offset of every partition)
        self.records: dict[str, int] = {}  # group → the most records behind seen
        self.seconds: dict[str, float] = {}  # group → the most seconds behind seen
        self.samples: list[float] = []  # the largest lag in seconds of any group, per sample
        self.worst: list[tuple[float, str, float]] = []  # (time, group, its lag): the worst group, per sample
        self.running = True

    def by_second(self, since: float) -> list[dict]:
        """Per second from ``since``: the worst lag sampled in it, and whose it was."""
        seconds: dict[int, tuple[float, str]] = {}
        for at, group, age in self.worst:
            second = int(at - since)
            if second >= 0 and age >= seconds.get(second, (-1.0, ""))[0]:
                seconds[second] = (age, group)
        return [{"second": s, "max_s": round(age, 3), "group": group.split(".", 1)[-1] if age else None}
                for s, (age, group) in sorted(seconds.items())]

    def run(self) -> None:
        while self.running:
            started = time.monotonic()
            ends = self.path.ends()
            self.history.append((started, ends))
            worst, worst_group = 0.0, ""
            for group, parts in self.path.lag(ends).items():
                behind = sum(parts.values())
                self.records[group] = max(self.records.get(group, 0), behind)
                age = 0.0
                for tp, lag in parts.items():
                    if lag:
                        committed = ends[tp] - lag
                        first = next((t for t, e in self.history if e[tp] > committed), started)
                        age = max(age, started - first)
                self.seconds[group] = round(max(self.seconds.get(group, 0.0), age), 3)
                if age > worst:
                    worst, worst_group = age, group
            self.samples.append(worst)
            self.worst.append((started, worst_group, worst))
            time.sleep(max(0.0, LAG_EVERY_S - (time.monotonic() - started)))


def run_load(stack: Stack, audience: dict, invitations: list, seconds: int, accepts: int, posts: int,
             watcher: Watcher) -> dict:
    """Send the accepts and posts at their steady rates; returns what was answered."""
    settings, urls = stack.settings, stack.urls
    authors = list(audience)
    schedule = []  # (when, kind, index), spread evenly over the run
    for i in range(accepts * seconds):
        schedule.append((i / accepts, "accept", i))
    for i in range(posts * seconds):
        schedule.append((i / posts + 0.5 / posts, "post", i))
    schedule.sort()
    answers: dict[str, int] = {}
    late: list[float] = []
    lock = threading.Lock()
    local = threading.local()
    tokens = {m: _auth(settings, m) for m in authors}
    tokens.update({member: _auth(settings, member) for member, _ in invitations})

    def send(kind: str, i: int) -> None:
        s = local.__dict__.setdefault("s", requests.Session())
        if kind == "accept":
            member, invitation = invitations[i]
            reply = s.post(f"{urls['connections']}/v1/invitations/{invitation}/accept", headers=tokens[member])
        else:
            author = authors[i % len(authors)]
            reply = s.post(f"{urls['feed']}/v1/posts", json={"text": f"fresh {i}"}, headers=tokens[author])
            if reply.status_code == 201:
                watcher.sent(reply.json()["id"], author, time.monotonic())
        with lock:
            key = f"{kind} {reply.status_code}"
            answers[key] = answers.get(key, 0) + 1

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        futures = []
        for when, kind, i in schedule:
            wait = start + when - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                late.append(-wait)
            futures.append(pool.submit(send, kind, i))
        for future in futures:
            future.result()
    elapsed = time.monotonic() - start
    return {"answers": answers, "seconds": round(elapsed, 2),
            "accepts_per_s": round(sum(n for k, n in answers.items() if k == "accept 200") / elapsed, 1),
            "posts_per_s": round(sum(n for k, n in answers.items() if k == "post 201") / elapsed, 1),
            "sender_behind_schedule_ms": percentiles(late) if late else {"n": 0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--accepts", type=int, default=100, help="accepted invitations a second")
    parser.add_argument("--posts", type=int, default=50, help="posts a second")
    parser.add_argument("--authors", type=int, default=20)
    parser.add_argument("--followers", type=int, default=25, help="followers of each author")
    args = parser.parse_args()
    stop_on_sigterm()
    settings = bench_settings()
    tag = uuid.uuid4().hex[:6]
    with Stack(settings) as stack:
        audience, invitations = setup(stack, tag, args.authors, args.followers, args.accepts * args.seconds)
        stack.settle()
        watcher, sampler = Watcher(settings, audience), LagSampler(stack)
        threads = [threading.Thread(target=watcher.run, args=(30,), daemon=True),
                   threading.Thread(target=sampler.run, daemon=True)]
        for thread in threads:
            thread.start()
        cpu_before, started = stack.cpu(), time.monotonic()
        load = run_load(stack, audience, invitations, args.seconds, args.accepts, args.posts, watcher)
        watcher.sending = False
        threads[0].join()
        drained = stack.settle()
        sampler.running = False
        threads[1].join()
        elapsed = time.monotonic() - started
        cpu = {name: round((seconds - cpu_before.get(name, 0.0)) / elapsed * 1000, 1)
               for name, seconds in stack.cpu().items() if "/" not in name}
    lag_samples = sorted(sampler.samples)
    figures = {
        "load": {"accepts_per_s_asked": args.accepts, "posts_per_s_asked": args.posts, **load},
        "audience": {"authors": args.authors, "followers_each": args.followers},
        "post_to_every_follower_feed": {**percentiles(watcher.latencies), "not_seen": len(watcher.pending),
                                        "poll_ms": POLL_S * 1000},
        "consumer_lag": {
            "max_s": round(lag_samples[-1], 3) if lag_samples else None,
            "p99_s": round(lag_samples[min(len(lag_samples) - 1, int(0.99 * len(lag_samples)))], 3)
            if lag_samples else None,
            "max_s_by_group": sampler.seconds, "max_records_by_group": sampler.records,
            "samples": len(lag_samples), "every_s": LAG_EVERY_S,
            "worst_by_second": sampler.by_second(started),
            "includes": "up to consumer_commit_interval_ms of commit delay",
        },
        "drained_after_s": drained,
        "cpu_ms_per_s": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
        "cpu_ms_per_s_total": round(sum(cpu.values()), 1),
        "aims": {"post_to_feed_p99_ms": 1000, "consumer_lag_max_s": 2},
        "settings": {"relay_linger_ms": settings.relay_linger_ms,
                     "consumer_fetch_wait_ms": settings.consumer_fetch_wait_ms,
                     "consumer_fetch_min_bytes": settings.consumer_fetch_min_bytes,
                     "consumer_commit_interval_ms": settings.consumer_commit_interval_ms},
    }
    write_results("freshness", figures)


if __name__ == "__main__":
    main()
