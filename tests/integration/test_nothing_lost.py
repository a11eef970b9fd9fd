"""Nothing lost, nothing doubled: a 2xx write reaches Kafka even when Kafka was down, and a
worker killed mid-stream resumes without losing or doubling a notification.

The outage test stops and restarts a real broker, so it runs its own second Kafka node
(its own ports and data) and never disturbs the broker the other tests share.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from services.notifications import store as notification_keys
from shared.bus.outbox import Outbox
from shared.bus.topics import drop_topics, ensure_topics
from shared.bus.worker import Worker
from shared.events import encode, new_event
from shared.settings import REPO_ROOT
from shared.stack import kafka as kafka_node
from shared.stack import processes
from tests.support.infra import eventually, next_version
from shared import store_client


def notifications_of(client, auth, member):
    response = client.get("/v1/notifications?limit=100", headers=auth(member))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


@pytest.fixture
def private_kafka(settings):
    """A second single-node Kafka on its own ports, which this test may stop and start."""
    run_dir = Path(tempfile.mkdtemp(prefix="rapport-kafka-outage-"))
    # Its own namespace too: its outbox must not be drained by this session's other relays.
    # One broker: its topics have one replica, whichever stack the session runs on.
    # Its port (and the next, its controller) is outside the cluster stack's (19092…) and the
    # cluster tests' own (19292…), which may run beside it.
    own = settings.replace(kafka_bootstrap="127.0.0.1:19392", run_dir=run_dir,
                           namespace=settings.namespace + "-outage", topic_replication_factor=1,
                           topic_min_insync_replicas=1)
    kafka_node.ensure_jars(own)
    kafka_node.format_storage(own)

    def start():
        kafka_node.wait_ready(own, timeout=120, pid=kafka_node.start(own))

    def stop():
        processes.stop(own.run_dir, kafka_node.NAME)
        eventually(lambda: not kafka_node.port_open(own), 30, message="private Kafka stopped")

    start()
    ensure_topics(own)
    yield own, start, stop
    stop()
    shutil.rmtree(run_dir, ignore_errors=True)


def test_a_follow_made_while_kafka_is_down_is_notified_once_kafka_is_back(private_kafka, auth, unique):
    own, start_kafka, stop_kafka = private_kafka
    from services.follows.app import create_app as follows_app
    from services.notifications.app import create_app as notifications_app

    follows = follows_app({"TESTING": True}, settings=own).test_client()
    notifications = notifications_app({"TESTING": True}, settings=own).test_client()
    workers = [Worker("follows", own).start(), Worker("notifications", own).start()]
    try:
        assert all(w.wait_ready(60) for w in workers)
        ada, grace = unique("ada"), unique("grace")
        stop_kafka()

        response = follows.put(f"/v1/following/{grace}", headers=auth(ada))

        assert response.status_code == 201
        store = store_client.connect(own.store_url("follows"), decode_responses=False)
        assert Outbox("follows", own).pending(store) >= 1, "the event waits in the outbox"
        start_kafka()
        items = eventually(lambda: notifications_of(notifications, auth, grace), timeout=150,
                           message="notification after Kafka came back")
        assert [(n["type"], n["actors"]) for n in items] == [("new_follower", [ada])]
        eventually(lambda: Outbox("follows", own).pending(store) == 0, 30, message="outbox drained")
    finally:
        for worker in workers:
            worker.shutdown()


def committed(settings, group: str) -> int:
    """How many records ``group`` has committed, over all partitions."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        return sum(meta.offset for meta in offsets.values() if meta.offset > 0)
    finally:
        admin.close()


def test_a_worker_killed_mid_stream_resumes_without_losing_or_doubling(settings, apps, auth, unique):
    # A namespace of its own: the kill hits no other test's worker, and no other worker helps.
    # Commits every 100 ms: the first ones come while most of the stream is still to handle (at
    # the default second, a quiet machine handles all of it before the first commit).
    own = settings.replace(namespace=settings.namespace + "-kill", consumer_commit_interval_ms=100)
    ensure_topics(own)
    total = 3000
    followees = unique.many("member", total)
    follower = unique("ada")
    producer = KafkaProducer(bootstrap_servers=own.kafka_bootstrap.split(","), acks="all", linger_ms=20)
    for i, followee in enumerate(followees):
        event = new_event("follows", "follow.created", {
            "follower": follower, "followee": followee, "reason": "explicit",
            "since": f"2026-11-26T10:00:{i % 60:02d}.000Z", "version": next_version()})
        producer.send(own.topic("follows.events"), key=event.key.encode(), value=encode(event))
    producer.flush()
    producer.close()
    env = {**os.environ, **own.as_env(), "RAPPORT_LOG_LEVEL": "WARNING"}
    group = own.group("notifications.inbox")

    def start_worker():
        return subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "notifications"], cwd=REPO_ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    worker = start_worker()
    try:
        eventually(lambda: committed(own, group) >= 100, timeout=60, interval=0.02, message="first commits")
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        assert committed(own, group) < total, "the kill came before the stream was drained"
        worker = start_worker()
        eventually(lambda: committed(own, group) == total, timeout=90, interval=0.2, message="all committed")
    finally:
        worker.kill()
        worker.wait(10)
        drop_topics(own)
    # Every inbox read from the store in one pipeline, and a sample of them through the API.
    inboxes = store_client.connect(own.store_url("notifications"))
    with inboxes.pipeline(transaction=False) as pipe:
        for followee in followees:
            pipe.zcard(notification_keys.inbox(followee))
        assert pipe.execute() == [1] * total
    client = apps("notifications")
    sample = followees[::30]
    assert [[(n["type"], n["actors"]) for n in notifications_of(client, auth, f)] for f in sample] \
        == [[("new_follower", [follower])]] * len(sample)
