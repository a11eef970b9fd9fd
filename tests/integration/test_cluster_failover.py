"""Failover under load on the cluster stack: a steady write load of follows, invitations and
accepts, posts and likes through the real APIs (gunicorn) and workers (``rapport worker``);
one Kafka broker is killed (SIGKILL), then one Redis primary (its replica takes over, and the
killed node comes back as a replica, as a supervisor would restart it). Once the event path
has drained, every write that answered 2xx has its effects exactly once, downstream ones
included; a write that answered otherwise (503 while a primary was gone, or no answer) may or
may not have happened, but never twice.

On a ``RAPPORT_TEST_STACK=cluster`` session it runs on the session's cluster stack and leaves
it whole (the killed nodes restarted); on the default stack, on the tests' own cluster stack
(``tests/support/cluster_stack.py``, shared with ``test_cluster_stack.py``).
"""
from __future__ import annotations

import itertools
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
import requests
from kafka import KafkaAdminClient, TopicPartition
from kafka.protocol.consumer import OffsetSpec

from shared import store_client
from shared.auth import mint_token
from shared.bus.outbox import Outbox
from shared.bus.topics import drop_topics, ensure_topics
from shared.settings import load_settings
from shared.stack import cluster, processes
from tests.conftest import TEST_STACK
from tests.support import members
from tests.support.cluster_stack import ServiceProcesses, rapport
from tests.support.infra import eventually, free_ports

SERVICES = ("connections", "follows", "feed", "notifications")
AUTHORS, SETUP_FANS, LOAD_FANS, CONNECTORS = 3, 4, 10, 12
POSTS_MAX, LIKERS_PER_POST = 60, 8
OPS_PER_SECOND = 8  # the whole load's pace, spread over its threads


@pytest.fixture(scope="module")
def fault_stack(request):
    """``(settings, env, cluster_settings)``: the session's settings, or on the default stack a
    namespace of their own on the tests' own cluster stack; ``env`` reproduces the stack for
    ``rapport up``; ``cluster_settings`` name its run folder (pid files) and nodes."""
    if TEST_STACK == "cluster":
        settings = request.getfixturevalue("settings")
        yield settings, dict(os.environ), cluster.settings_for(load_settings())
        return
    env, stack = request.getfixturevalue("own_cluster_stack")
    nowhere, = free_ports(1)
    settings = stack.replace(namespace=f"test-fault-{uuid.uuid4().hex[:6]}",
                             base_urls={**stack.base_urls, "profiles": f"http://127.0.0.1:{nowhere}"})
    ensure_topics(settings)
    yield settings, env, stack
    drop_topics(settings)


@dataclass
class Load:
    """The writes to make, what each answered, and the state the checks need."""

    urls: dict[str, str]
    secret: str
    authors: list[str]
    setup_fans: list[str]
    load_fans: list[str]
    connectors: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(13))
    lock: threading.Lock = field(default_factory=threading.Lock)
    follows: list = field(default_factory=list)  # (fan, author) still to make
    invites: list = field(default_factory=list)  # (inviter, invitee) still to make
    to_accept: list = field(default_factory=list)  # (inviter, invitee, invitation id) answered 201
    outcomes: dict = field(default_factory=lambda: defaultdict(dict))  # kind → key → "ok" | "unknown"
    posts: dict = field(default_factory=dict)  # post id → author, for each post answered 201
    unknown_posts: Counter = field(default_factory=Counter)  # author → posts not answered 201
    likes_tried: dict = field(default_factory=lambda: defaultdict(set))  # post id → likers tried
    answers: Counter = field(default_factory=Counter)  # (kind, status) → count
    turn: itertools.cycle = field(default_factory=lambda: itertools.cycle(
        ["post", "like", "follow", "invite", "like", "accept"]))

    def __post_init__(self):
        self.follows = [(f, a) for f in self.load_fans for a in self.authors]
        self.invites = list(itertools.combinations(self.connectors, 2))
        self.rng.shuffle(self.follows)
        self.rng.shuffle(self.invites)
        self.likers = self.setup_fans + self.load_fans

    def headers(self, member: str) -> dict:
        return {"Authorization": f"Bearer {mint_token(member, self.secret)}"}

    def _next(self):
        """The next write as ``(kind, key, method, url, member)``, or None when all are made."""
        with self.lock:
            for _ in range(6):
                kind = next(self.turn)
                if kind == "follow" and self.follows:
                    fan, author = self.follows.pop()
                    return kind, (fan, author), "PUT", f"{self.urls['follows']}/v1/following/{author}", fan
                if kind == "invite" and self.invites:
                    inviter, invitee = self.invites.pop()
                    return kind, (inviter, invitee), "POST", f"{self.urls['connections']}/v1/invitations", inviter
                if kind == "accept" and self.to_accept:
                    inviter, invitee, invitation = self.to_accept.pop(0)
                    return (kind, (inviter, invitee), "POST",
                            f"{self.urls['connections']}/v1/invitations/{invitation}/accept", invitee)
                if kind == "post" and len(self.posts) + sum(self.unknown_posts.values()) < POSTS_MAX:
                    author = self.authors[(len(self.posts) + sum(self.unknown_posts.values())) % len(self.authors)]
                    return kind, author, "POST", f"{self.urls['feed']}/v1/posts", author
                if kind == "like":
                    open_posts = [p for p in self.posts if len(self.likes_tried[p]) < LIKERS_PER_POST]
                    if open_posts:
                        post = self.rng.choice(open_posts)
                        liker = self.rng.choice([m for m in self.likers if m not in self.likes_tried[post]])
                        self.likes_tried[post].add(liker)
                        return kind, (liker, post), "PUT", f"{self.urls['feed']}/v1/posts/{post}/like", liker
            return None

    def write(self, session: requests.Session) -> bool:
        """Make one write and record its answer; False when none is left."""
        op = self._next()
        if op is None:
            return False
        kind, key, method, url, member = op
        body = {"invitee": key[1]} if kind == "invite" else {"text": f"post {uuid.uuid4().hex[:6]}"} \
            if kind == "post" else None
        try:
            response = session.request(method, url, json=body, headers=self.headers(member), timeout=15)
            status = response.status_code
        except requests.RequestException:
            response, status = None, "no answer"
        with self.lock:
            self.answers[(kind, status)] += 1
            ok = isinstance(status, int) and 200 <= status < 300
            assert not (isinstance(status, int) and 400 <= status < 500), \
                f"{kind} {key} answered {status}: {response.text}"  # every write made is a valid one
            if kind == "post":
                if ok:
                    self.posts[response.json()["id"]] = key
                else:
                    self.unknown_posts[key] += 1
                return True
            self.outcomes[kind][key] = "ok" if ok else "unknown"
            if kind == "invite" and ok:
                self.to_accept.append((*key, response.json()["id"]))
        return True


def run_load(load: Load, stop: threading.Event, errors: list, threads: int = 2) -> list[threading.Thread]:
    """Write at OPS_PER_SECOND from ``threads`` threads until ``stop``; an unexpected answer
    goes to ``errors`` and stops the load."""

    def loop():
        session = requests.Session()
        pause = threads / OPS_PER_SECOND
        while not stop.is_set():
            began = time.monotonic()
            try:
                load.write(session)
            except Exception as exc:  # noqa: BLE001 (an unexpected answer: the test fails with it)
                errors.append(exc)
                stop.set()
            stop.wait(max(0.0, pause - (time.monotonic() - began)))

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    return workers


def behind(settings) -> dict:
    """What the event path has not done yet: entries waiting in the four services' outboxes, and
    per consumer group the records it has not committed. Empty once it has drained."""
    import importlib

    waiting = {}
    for service in SERVICES:
        pending = Outbox(service, settings).pending(store_client.connect(settings.store_url(service)))
        if pending:
            waiting[f"outbox {service}"] = pending
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="rapport-test-drain")
    try:
        groups = {settings.group(spec.name): [settings.topic(t) for t in spec.topics]
                  for service in SERVICES
                  for spec in importlib.import_module(f"services.{service}.worker").consumers(settings)}
        topics = sorted({t for ts in groups.values() for t in ts})
        partitions = [TopicPartition(t["name"], p["partition_index"]) for t in admin.describe_topics(topics)
                      for p in t["partitions"]]
        ends = {tp: o.offset for tp, o in
                admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions}).items()}
        committed = admin.list_group_offsets({g: None for g in groups})
        for group, its_topics in groups.items():
            offsets = committed.get(group, {})
            lag = sum(max(ends[tp] - (offsets[tp].offset if tp in offsets else 0), 0)
                      for tp in partitions if tp.topic in its_topics)
            if lag:
                waiting[group] = lag
        return waiting
    finally:
        admin.close()


def paged(session: requests.Session, url: str, headers: dict) -> list[dict]:
    items, cursor = [], None
    while True:
        response = session.get(url, params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                               headers=headers, timeout=15)
        assert response.status_code == 200, (url, response.status_code, response.text)
        items += response.json()["items"]
        cursor = response.json().get("next_cursor")
        if not cursor:
            return items


def _primary_ports(settings) -> list[int]:
    client = store_client.connect(settings.store_url("follows"))
    return [node.port for node in client.get_primaries()]


def _pid_of_redis(port: int) -> int:
    import redis

    return int(redis.Redis(port=port).info("server")["process_id"])


def _failed_over(dead_port: int, ports: list[int]) -> bool:
    survivor = next(p for p in ports if p != dead_port)
    info = cluster.cluster_info(survivor)
    if info.get("cluster_state") != "ok":
        return False
    return dead_port not in [n.port for n in store_client.connect(f"redis+cluster://127.0.0.1:{survivor}").get_primaries()]


def _describe_behind(settings) -> str:
    try:
        return repr(behind(settings))
    except Exception as exc:  # noqa: BLE001 (a description for a failure message)
        return repr(exc)


def test_every_write_answered_2xx_has_its_effects_exactly_once_after_a_broker_and_a_redis_primary_are_killed(
        fault_stack):
    settings, env, stack = fault_stack
    tag = uuid.uuid4().hex[:6]
    authors = [f"author{i}-{tag}" for i in range(AUTHORS)]
    setup_fans = [f"reader{i}-{tag}" for i in range(SETUP_FANS)]
    load_fans = [f"fan{i}-{tag}" for i in range(LOAD_FANS)]
    connectors = [f"peer{i}-{tag}" for i in range(CONNECTORS)]
    members.register(settings, *authors, *setup_fans, *load_fans, *connectors)
    redis_ports = [p for _, p in store_client.cluster_nodes(stack.cache_url)]
    services = ServiceProcesses(settings, SERVICES, log_level="INFO").start()  # INFO: the groups' joins
    stop = threading.Event()
    errors: list[BaseException] = []
    try:
        load = Load(services.base_urls, settings.jwt_secret, authors, setup_fans, load_fans, connectors)
        http = requests.Session()
        for fan in setup_fans:  # followers from before the load: every post must reach them
            for author in authors:
                answer = http.put(f"{services.base_urls['follows']}/v1/following/{author}",
                                  headers=load.headers(fan), timeout=15)
                assert answer.status_code == 201, answer.text
        _warm_up(load, http)

        threads = run_load(load, stop, errors)
        stop.wait(8)
        broker = "kafka-2"
        os.kill(processes.running_pid(stack.run_dir, broker), signal.SIGKILL)
        stop.wait(10)
        primary = _primary_ports(settings)[0]
        os.kill(_pid_of_redis(primary), signal.SIGKILL)
        began = time.monotonic()
        eventually(lambda: _failed_over(primary, redis_ports), timeout=60, interval=0.2,
                   message="the killed primary's replica takes over")
        failover_s = time.monotonic() - began
        # Restarted, the killed Redis node rejoins as its successor's replica (so writes find a
        # replica to WAIT for again) and the killed broker rejoins the quorum.
        restarted = rapport(env, "up", "--cluster", "--infra-only")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        stop.wait(8)
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        print(f"failover {failover_s:.1f}s; answers {dict(load.answers)}")

        # Drained twice in a row: an outbox written between two looks shows on the second.
        try:
            eventually(lambda: not behind(settings) and not behind(settings), timeout=120, interval=0.5,
                       message="the event path drains")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; behind: {_describe_behind(settings)}\n{services.log_tail()}") from None
        _check(load, http)
    finally:
        stop.set()
        services.stop()
        if TEST_STACK == "cluster":  # leave the session's stack whole whatever happened
            rapport(env, "up", "--cluster", "--infra-only")


def _warm_up(load: Load, http: requests.Session) -> None:
    """A post of each author and one connection, followed through to what they cause: once they
    show, every consumer group on the way holds its partitions and the load can start. Both
    count among the writes checked at the end."""
    urls = load.urls
    for author in load.authors:
        answer = http.post(f"{urls['feed']}/v1/posts", json={"text": "warm-up"}, headers=load.headers(author),
                           timeout=15)
        assert answer.status_code == 201, answer.text
        load.posts[answer.json()["id"]] = author
    inviter, invitee = pair = load.connectors[0], load.connectors[1]
    load.invites.remove(pair)
    invitation = http.post(f"{urls['connections']}/v1/invitations", json={"invitee": invitee},
                           headers=load.headers(inviter), timeout=15)
    assert invitation.status_code == 201, invitation.text
    accepted = http.post(f"{urls['connections']}/v1/invitations/{invitation.json()['id']}/accept",
                         headers=load.headers(invitee), timeout=15)
    assert accepted.status_code == 200, accepted.text
    load.outcomes["invite"][pair] = load.outcomes["accept"][pair] = "ok"

    def through():
        feeds = all(set(load.posts) <= {p["id"] for p in paged(http, f"{urls['feed']}/v1/feed", load.headers(fan))}
                    for fan in load.setup_fans)
        connected = all(other in {c["member"] for c in paged(
            http, f"{urls['connections']}/v1/members/{member}/connections", load.headers(member))}
            for member, other in (pair, pair[::-1]))
        notified = any(n["type"] == "invitation_accepted" for n in paged(
            http, f"{urls['notifications']}/v1/notifications", load.headers(inviter)))
        return feeds and connected and notified

    eventually(through, timeout=90, interval=0.5, message="the warm-up's effects (every consumer group working)")


def _check(load: Load, http: requests.Session) -> None:
    urls = load.urls
    ok = {kind: {k for k, v in found.items() if v == "ok"} for kind, found in load.outcomes.items()}
    tried = {kind: set(found) for kind, found in load.outcomes.items()}
    assert ok.get("follow") and ok.get("accept") and ok.get("like") and load.posts, \
        f"the load made writes of every kind: {dict(load.answers)}"

    # Follows: each author's followers are the acknowledged follows and perhaps unanswered
    # ones, each once; the counts and the new-follower notifications agree.
    followers_of = {}
    for author in load.authors:
        found = [e["member"] for e in paged(http, f"{urls['follows']}/v1/members/{author}/followers",
                                             load.headers(author))]
        assert len(found) == len(set(found)), f"{author}'s followers listed twice: {found}"
        acked = set(load.setup_fans) | {f for f, a in ok["follow"] if a == author}
        maybe = {f for f, a in tried["follow"] if a == author}
        assert acked <= set(found) <= acked | maybe, author
        followers_of[author] = set(found)
        stats = http.get(f"{urls['follows']}/v1/members/{author}/follow-stats", headers=load.headers(author),
                         timeout=15).json()
        assert stats["followers"] == len(found), (author, stats)
        inbox = paged(http, f"{urls['notifications']}/v1/notifications", load.headers(author))
        new_followers = [n for n in inbox if n["type"] == "new_follower"]
        assert sum(n["actor_count"] for n in new_followers) == len(found), (author, new_followers)
        assert {a for n in new_followers for a in n["actors"]} <= set(found)

    # Posts: every post there is (answered 201 or not) is in the timeline of each of its
    # author's followers, once; nothing else is.
    posts_of = {}
    for author in load.authors:
        own = [p["id"] for p in paged(http, f"{urls['feed']}/v1/members/{author}/posts", load.headers(author))]
        acked = {p for p, a in load.posts.items() if a == author}
        assert acked <= set(own) and len(own) == len(set(own)), author
        assert len(own) <= len(acked) + load.unknown_posts[author], author
        posts_of[author] = set(own)
    for fan in load.setup_fans + load.load_fans:
        feed = [p["id"] for p in paged(http, f"{urls['feed']}/v1/feed", load.headers(fan))]
        assert len(feed) == len(set(feed)), f"{fan}'s timeline holds a post twice"
        expected = set().union(*(posts_of[a] for a in load.authors if fan in followers_of[a]))
        assert set(feed) == expected, (fan, sorted(expected - set(feed)), sorted(set(feed) - expected))

    # Likes: each post's count is its acknowledged likes and perhaps unanswered ones; its
    # author's notification names exactly those likers.
    liked_notes = defaultdict(list)
    for author in load.authors:
        for n in paged(http, f"{urls['notifications']}/v1/notifications", load.headers(author)):
            if n["type"] == "post_liked":
                liked_notes[n["object"]].append(n)
    for post, author in load.posts.items():
        likes = http.get(f"{urls['feed']}/v1/posts/{post}", headers=load.headers(author), timeout=15).json()["likes"]
        acked = {m for m, p in ok.get("like", ()) if p == post}
        maybe = {m for m, p in tried.get("like", ()) if p == post}
        assert len(acked) <= likes <= len(maybe), (post, likes, acked, maybe)
        notes = liked_notes.get(post, [])
        assert sum(n["actor_count"] for n in notes) == likes, (post, likes, notes)
        if likes:  # at most LIKERS_PER_POST (8) likers: all shown
            assert acked <= {a for n in notes for a in n["actors"]} <= maybe, (post, notes)

    # Connections: an accepted invitation connects both sides, once; nobody else is connected;
    # each invitation and acceptance is notified once.
    connections = {}
    for member in load.connectors:
        found = [c["member"] for c in paged(http, f"{urls['connections']}/v1/members/{member}/connections",
                                             load.headers(member))]
        assert len(found) == len(set(found)), f"{member}'s connections listed twice: {found}"
        count = http.get(f"{urls['connections']}/v1/members/{member}/connections/count",
                         headers=load.headers(member), timeout=15).json()["count"]
        assert count == len(found), (member, count, found)
        connections[member] = set(found)
    inboxes = {m: paged(http, f"{urls['notifications']}/v1/notifications", load.headers(m)) for m in load.connectors}
    for inviter, invitee in itertools.combinations(load.connectors, 2):
        pair = (inviter, invitee)
        linked = invitee in connections[inviter]
        assert linked == (inviter in connections[invitee]), f"{pair}: connected on one side only"
        if pair in ok.get("accept", ()):
            assert linked, f"{pair}: accepted (2xx) but not connected"
        if linked:
            assert pair in tried.get("accept", ()), f"{pair}: connected without an accept"
        received = [n for n in inboxes[invitee] if n["type"] == "invitation_received" and n["actors"] == [inviter]]
        if pair in ok.get("invite", ()):
            assert len(received) == 1, (pair, received)
        assert len(received) <= (1 if pair in tried.get("invite", ()) else 0), (pair, received)
        accepted = [n for n in inboxes[inviter] if n["type"] == "invitation_accepted" and n["actors"] == [invitee]]
        assert len(accepted) == (1 if linked else 0), (pair, accepted)
