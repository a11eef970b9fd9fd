"""A rebalance loses and doubles nothing: under a stream of follows and unfollows, a second
follows worker process joins the consumer group (partitions move to it), then the first is
killed with SIGKILL mid-stream (its partitions move again, and its relay's outbox shards go to
the survivor once their leases lapse). Afterwards every followee's followers are exactly the
follows made, in the order they were made.

The stream repeats each edge (follow, unfollow, follow again for some): a lost event leaves a
follower missing or present when it should not be, and an event handled twice out of order (a
redelivered unfollow after the later follow) would undo the last write.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaAdminClient

from shared.bus.topics import drop_topics, ensure_topics
from shared.settings import REPO_ROOT
from tests.support import members as registry
from tests.support.infra import eventually

FOLLOWERS, FOLLOWEES = 40, 10
WRITE_SECONDS = 24.0  # the stream spans the join, the kill and the takeover after it


def group_members(settings, group: str) -> list[list[int]]:
    """The partitions each member of ``group`` holds now, one list per member."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        described = admin.describe_groups([group])[group]
    finally:
        admin.close()
    if described.get("group_state") != "Stable":
        return []
    held = []
    for member in described.get("members", []):
        assignment = member.get("member_assignment") or {}
        held.append(sorted(p for topic in assignment.get("assigned_partitions", []) for p in topic["partitions"]))
    return held


def plan(followers: list[str], followees: list[str]) -> list[tuple[str, str, str]]:
    """The stream: every follower follows every followee, every third edge is then removed and
    every sixth of those followed again, interleaved so each followee gets writes all along."""
    pairs = [(a, b) for a in followers for b in followees]
    ops = [("PUT", a, b) for a, b in pairs]
    ops += [("DELETE", a, b) for i, (a, b) in enumerate(pairs) if i % 3 == 0]
    ops += [("PUT", a, b) for i, (a, b) in enumerate(pairs) if i % 6 == 0]
    return ops


def expected_followers(ops) -> dict[str, set[str]]:
    state: dict[str, set[str]] = {}
    for method, a, b in ops:
        followers = state.setdefault(b, set())
        (followers.add if method == "PUT" else followers.discard)(a)
    return state


@pytest.fixture
def own(settings):
    # A namespace of its own: its topics, groups and outbox are drained by this test's worker
    # processes alone. No metrics ports, so the two processes do not contend for one.
    own = settings.replace(namespace=settings.namespace + "-rebalance",
                           worker_metrics_ports={s: 0 for s in settings.worker_metrics_ports})
    ensure_topics(own)
    yield own
    drop_topics(own)


def test_a_worker_joining_and_one_killed_mid_stream_leave_every_follow_projected_exactly_once(own, auth):
    from services.follows.app import create_app as follows_app

    suffix = os.urandom(4).hex()
    followers = [f"fan{i}-{suffix}" for i in range(FOLLOWERS)]
    followees = [f"star{i}-{suffix}" for i in range(FOLLOWEES)]
    registry.register(own, *followers, *followees, services=("follows",))
    api = follows_app({"TESTING": True}, settings=own).test_client()
    ops = plan(followers, followees)
    env = {**os.environ, **own.as_env(), "RAPPORT_LOG_LEVEL": "WARNING"}
    group = own.group("follows.followers")

    def start_worker():
        return subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "follows"], cwd=REPO_ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    failures: list[str] = []
    done = threading.Event()

    def write():
        pause = WRITE_SECONDS / len(ops)
        try:
            for method, a, b in ops:
                response = api.open(f"/v1/following/{b}", method=method, headers=auth(a))
                if response.status_code not in (200, 201, 204):
                    failures.append(f"{method} {a}->{b}: {response.status_code} {response.get_json()}")
                time.sleep(pause)
        finally:
            done.set()

    first = start_worker()
    second = None
    writer = threading.Thread(target=write, name="follow-stream", daemon=True)
    try:
        eventually(lambda: len(group_members(own, group)) == 1, timeout=60, interval=0.2,
                   message="the first worker holds the partitions")
        writer.start()
        time.sleep(WRITE_SECONDS / 6)
        second = start_worker()
        def both_hold_partitions():
            held = group_members(own, group)
            return held if len(held) == 2 and all(held) else None

        shared_out = eventually(both_hold_partitions, timeout=45, interval=0.2,
                                message="the second worker joined and took partitions")
        assert sorted(p for held in shared_out for p in held) == list(range(own.topic_partitions))
        assert not done.is_set(), "the join came mid-stream"
        time.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert not done.is_set(), "the kill came mid-stream"
        # The survivor takes the dead one's partitions once its session lapses.
        eventually(lambda: group_members(own, group) == [list(range(own.topic_partitions))], timeout=45,
                   interval=0.5, message="the survivor holds every partition")
        writer.join(WRITE_SECONDS * 3)
        assert done.is_set(), "the stream finished"
        assert failures == []
        want = expected_followers(ops)

        def projected():
            seen = {}
            for b in followees:
                page = api.get(f"/v1/members/{b}/followers?limit=100", headers=auth(b)).get_json()
                seen[b] = {item["member"] for item in page["items"]}
            return seen

        eventually(lambda: projected() == want, timeout=60, interval=0.5,
                   message="every followee's followers are the follows made")
        # Settled, not passing through: still exact after every worker has caught up with its own commits.
        time.sleep(2.0)
        assert projected() == want
        counts = {b: api.get(f"/v1/members/{b}/follow-stats", headers=auth(b)).get_json()["followers"]
                  for b in followees}
        assert counts == {b: len(want[b]) for b in followees}
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(10)
