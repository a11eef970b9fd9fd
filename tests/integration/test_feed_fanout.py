"""Fan-out at scale: high-follower authors merged at read time, big audiences written by the
handler up to a limit and in batches beyond it, a worker killed mid-way that resumes without
losing a timeline entry, and timelines that keep their cap.

These tests run their own feed worker with a low threshold and tiny batches, in a Kafka
namespace of their own, so the session's feed worker (default limits) never sees them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from services.feed import store as keys
from services.feed.app import create_app
from services.feed.timelines import SCRIPT_BATCH, Timelines
from shared.bus.topics import drop_topics, ensure_topics
from shared.bus.worker import Worker
from shared.events import new_event
from shared.settings import REPO_ROOT
from tests.support.infra import EventPublisher, eventually, events_of, next_version, read_topic
from shared import store_client

T0 = "2026-01-01T00:00:00.000Z"
THRESHOLD = 3  # more than 3 followers: a high-follower author
BATCH = 2
INLINE = 2  # the handler writes 2 members itself, the rest goes through feed.fanout
CAP = 4


@pytest.fixture(scope="module")
def small_settings(settings):
    small = settings.replace(namespace=f"{settings.namespace}-fanout", fanout_threshold=THRESHOLD,
                             fanout_batch_size=BATCH, fanout_inline_limit=INLINE, timeline_cap=CAP)
    ensure_topics(small)
    return small


@pytest.fixture(scope="module")
def start_worker(small_settings):
    running = []

    def start():
        worker = Worker("feed", small_settings).start()
        assert worker.wait_ready(60)
        running.append(worker)
        return worker

    def stop_all():
        while running:
            running.pop().shutdown()

    start.stop_all = stop_all
    yield start
    stop_all()


@pytest.fixture(scope="module")
def feed(small_settings):
    return create_app({"TESTING": True}, settings=small_settings).test_client()


@pytest.fixture(scope="module")
def publish_events(small_settings):
    publisher = EventPublisher(small_settings)
    yield publisher
    publisher.close()


def follows(a, b):
    return new_event("follows", "follow.created", {"follower": a, "followee": b, "reason": "explicit", "since": T0,
                                                    "version": next_version()})


def write(feed, auth, member, text="hello"):
    response = feed.post("/v1/posts", json={"text": text}, headers=auth(member))
    assert response.status_code == 201, response.json
    return response.json["id"]


def ids(feed, auth, member):
    response = feed.get("/v1/feed", headers=auth(member))
    assert response.status_code == 200, response.json
    return [p["id"] for p in response.json["items"]]


def test_a_high_follower_authors_posts_reach_followers_through_the_read_time_merge(
        feed, auth, unique, publish_events, start_worker, small_settings):
    cache = store_client.connect(small_settings.cache_url)
    start_worker()
    star = unique("star")
    fans = [unique(f"fan{i}") for i in range(THRESHOLD + 1)]
    for fan in fans:
        ids(feed, auth, fan)
    publish_events(*[follows(fan, star) for fan in fans])
    first = write(feed, auth, star, "before")
    eventually(lambda: all(first in ids(feed, auth, fan) for fan in fans), message="backfill to every fan")

    second = write(feed, auth, star, "to my many followers")

    # Not fanned out (no timeline holds it) but merged into every follower's feed as it is read.
    assert all(ids(feed, auth, fan) == [second, first] for fan in fans)
    assert all(second not in cache.zrange(keys.timeline(fan), 0, -1) for fan in fans)
    outsider = unique("outsider")
    assert ids(feed, auth, outsider) == []


def test_a_big_audience_is_fanned_out_in_batches_when_the_worker_is_stopped_before_the_post(
        feed, auth, unique, publish_events, start_worker, small_settings):
    author = unique("author")
    fans = [unique(f"fan{i}") for i in range(THRESHOLD)]  # at the threshold: fanned out, in 2 batches
    for fan in fans:
        ids(feed, auth, fan)
    start_worker()
    publish_events(*[follows(fan, author) for fan in fans])
    warmup = write(feed, auth, author, "warm-up")
    eventually(lambda: all(warmup in ids(feed, auth, fan) for fan in fans))

    start_worker.stop_all()  # the post is written while no feed worker runs
    post = write(feed, auth, author, "in batches")
    start_worker()

    eventually(lambda: all(ids(feed, auth, fan) == [post, warmup] for fan in fans), timeout=30,
               message="every fan's timeline gets the post")
    # The first INLINE members are written by the handler itself; the rest travelled through feed.fanout.
    batches = read_topic(small_settings, "feed.fanout",
                         lambda evs: events_of(evs, "fanout.batch", post_id=post))
    assert [e.data["members"] for e in events_of(batches, "fanout.batch", post_id=post)] == [sorted(fans)[INLINE:]]


def test_a_worker_killed_mid_fan_out_resumes_and_every_timeline_gets_the_post_once(settings, auth, unique):
    # Its own namespace and a real worker process, so that SIGKILL hits nothing else; many tiny
    # batches, so that the fan-out takes long enough to be caught half-way, and a cheap look at a
    # sample of the fans to catch it (counting all 3,000 takes about as long as the fan-out).
    fans_count, batch = 3000, 2
    own = settings.replace(namespace=f"{settings.namespace}-fanout-kill", fanout_threshold=fans_count,
                           fanout_batch_size=batch, fanout_inline_limit=batch)
    ensure_topics(own)
    cache = store_client.connect(own.cache_url)
    store = store_client.connect(own.store_url("feed"))
    author = unique("author")
    fans = unique.many("fan", fans_count)
    with cache.pipeline(transaction=False) as pipe:
        for fan in fans:  # live timelines, as a first read leaves them
            pipe.zadd(keys.timeline(fan), {keys.LIVE: "inf"})
        pipe.execute()
    publisher = EventPublisher(own)
    env = {**os.environ, **own.as_env(), "RAPPORT_LOG_LEVEL": "WARNING"}

    def start():
        return subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "feed"], cwd=REPO_ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def reached(post_id, among=fans):
        with cache.pipeline(transaction=False) as pipe:
            for fan in among:
                pipe.zscore(keys.timeline(fan), post_id)
            return sum(score is not None for score in pipe.execute())

    worker = start()
    try:
        publisher(*[follows(fan, author) for fan in fans])
        eventually(lambda: store.zcard(keys.followers(author)) == fans_count, timeout=60,
                   message="the feed knows every follower")
        post = write(create_app({"TESTING": True}, settings=own).test_client(), auth, author, "to every fan")

        sample = fans[::60]  # 50 fans: 3 of them reached is about 180 timelines, past the inline part
        eventually(lambda: reached(post, sample) >= 3, timeout=60, interval=0.002, message="fan-out under way")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        halfway = reached(post)
        assert batch < halfway < fans_count, "the kill came during the fan-out"
        worker = start()

        eventually(lambda: reached(post) == fans_count, timeout=120, interval=0.2,
                   message="every fan's timeline gets the post after the restart")
        assert all(cache.zrange(keys.timeline(fan), 0, -1) == [post, keys.LIVE] for fan in fans[:50])
    finally:
        worker.kill()
        worker.wait(10)
        publisher.close()
        drop_topics(own)


def test_a_timeline_keeps_only_the_newest_posts_up_to_its_cap(feed, auth, unique, publish_events, start_worker,
                                                              small_settings):
    cache = store_client.connect(small_settings.cache_url)
    start_worker()
    author, fan = unique("author"), unique("fan")
    ids(feed, auth, fan)
    publish_events(follows(fan, author))
    posts = [write(feed, auth, author, "first")]
    eventually(lambda: posts[0] in ids(feed, auth, fan), message="the follow reached the feed")

    posts += [write(feed, auth, author, f"post {i}") for i in range(CAP + 1)]

    eventually(lambda: posts[-1] in cache.zrange(keys.timeline(fan), 0, -1), message="fan-out of the last post")
    assert cache.zrevrange(keys.timeline(fan), 0, -1) == [keys.LIVE, *posts[::-1][:CAP]]


def test_one_fan_out_reaches_thousands_of_live_timelines_in_server_side_batches_and_skips_the_rest(
        unique, small_settings):
    cache = store_client.connect(small_settings.cache_url)
    timelines = Timelines(cache, small_settings)
    members = unique.many("m", 2 * SCRIPT_BATCH + 100)
    away = set(members[SCRIPT_BATCH - 1:SCRIPT_BATCH + 2])  # no live timeline, across a batch boundary
    live = [m for m in members if m not in away]
    pipe = cache.pipeline(transaction=False)
    for member in live:
        pipe.zadd(keys.timeline(member), {keys.LIVE: "inf"})
        pipe.expire(keys.timeline(member), 600)
    pipe.execute()
    try:
        assert timelines.fan_out(members, [("someone~1", 1), ("someone~2", 2)]) == len(live)

        pipe = cache.pipeline(transaction=False)
        for member in members:
            pipe.zrange(keys.timeline(member), 0, -1)
        written = dict(zip(members, pipe.execute()))
        assert all(written[m] == ["someone~1", "someone~2", keys.LIVE] for m in live)
        assert all(written[m] == [] for m in away)
    finally:
        cache.delete(*[keys.timeline(m) for m in members])


def test_pages_merge_a_high_follower_authors_posts_with_the_timeline_newest_first_without_repeats(
        feed, auth, unique, publish_events, start_worker, small_settings):
    store = store_client.connect(small_settings.store_url("feed"))
    start_worker()
    star, friend = unique("star"), unique("friend")
    fans = [unique(f"fan{i}") for i in range(THRESHOLD + 1)]
    reader = fans[0]
    ids(feed, auth, reader)
    publish_events(*[follows(fan, star) for fan in fans], follows(reader, friend))
    warmup = write(feed, auth, friend, "warm-up")
    eventually(lambda: warmup in ids(feed, auth, reader), message="the friend's posts reach the reader")
    eventually(lambda: all(store.zscore(copy, star) is not None for copy in keys.all_high_follower_authors()),
               message="star is above the threshold, in every shard's copy")

    written = [write(feed, auth, author, f"post {i}") for i in range(3) for author in (star, friend)]
    eventually(lambda: written[-1] in ids(feed, auth, reader), message="fan-out of the friend's last post")

    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = feed.get("/v1/feed", query_string=query, headers=auth(reader)).json
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [*written[::-1], warmup]
