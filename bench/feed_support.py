"""What the feed benchmarks share: seeding the audience replica, live timelines, feed workers."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import redis

from bench.support import settings_env
from services.feed import store as keys
from shared.settings import REPO_ROOT, Settings
from shared import store_client


def clients(settings: Settings) -> tuple[redis.Redis, redis.Redis]:
    store = store_client.connect(settings.store_url("feed"))
    cache = store_client.connect(settings.cache_url)
    return store, cache


def seed_followers(store: redis.Redis, author: str, fans: list[str]) -> None:
    """Write ``fans`` → ``author`` follow edges straight into the feed's replica."""
    for start in range(0, len(fans), 10_000):
        chunk = fans[start:start + 10_000]
        pipe = store.pipeline(transaction=False)
        pipe.zadd(keys.followers(author), {fan: 1 for fan in chunk})
        for fan in chunk:
            pipe.zadd(keys.following(fan), {author: 1})
        pipe.execute()


def activate(cache: redis.Redis, settings: Settings, members: list[str]) -> None:
    """Give ``members`` live (empty) timelines, as if each had just read their feed."""
    ttl = settings.inactive_days * 24 * 3600 * 1000
    for start in range(0, len(members), 10_000):
        pipe = cache.pipeline(transaction=False)
        for member in members[start:start + 10_000]:
            pipe.zadd(keys.timeline(member), {keys.LIVE: "inf"})
            pipe.pexpire(keys.timeline(member), ttl)
        pipe.execute()


def forget(cache: redis.Redis, members: list[str]) -> None:
    for start in range(0, len(members), 10_000):
        cache.delete(*[keys.timeline(m) for m in members[start:start + 10_000]])


@contextlib.contextmanager
def feed_workers(settings: Settings, count: int = 1, **env_overrides):
    """Run ``count`` feed worker processes (``rapport worker feed``) for ``settings``."""
    env = settings_env(settings)
    env.update({f"RAPPORT_{k.upper()}": str(v) for k, v in env_overrides.items()})
    procs = [subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "feed"], cwd=REPO_ROOT, env=env,
                              start_new_session=True) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(20)


def wait_for(probe, timeout: float, interval: float = 0.002) -> float:
    """Poll ``probe`` until truthy; returns the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return time.monotonic()
        time.sleep(interval)
    raise TimeoutError(f"not done within {timeout}s")
