"""Kafka's own tools through `rapport kafka`, and what a test session leaves on the broker
(nothing): the real broker, this session's namespace or one of the test's own."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition

from shared.bus.topics import drop_namespace, ensure_topics, in_namespace
from shared.bus.worker import Worker
from shared.stack import kafka
from tests.support.infra import eventually


def rapport_kafka(settings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.as_env(), **(env or {})}
    return subprocess.run([sys.executable, "-m", "shared.cli", "kafka", *args], env=env, capture_output=True,
                          text=True, timeout=180, check=False)


def make_group(settings, group: str, topic: str) -> None:
    """A consumer group with an offset committed on each partition of ``topic``, its consumer
    closed (partitions assigned by hand: no rebalance to wait for)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=group,
                             enable_auto_commit=False)
    try:
        partitions = eventually(lambda: consumer.partitions_for_topic(topic), 30, message=f"partitions of {topic}")
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.commit({tp: OffsetAndMetadata(0, "", -1) for tp in consumer.assignment()})
    finally:
        consumer.close()


def names_in(settings, namespace: str) -> tuple[list[str], list[str]]:
    """``(groups, topics)`` on the broker that belong to ``namespace`` or one made from it."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    try:
        groups = [g["group_id"] for g in admin.list_groups() if in_namespace(g["group_id"], namespace)]
        topics = [t for t in admin.list_topics() if in_namespace(t, namespace)]
        return groups, topics
    finally:
        admin.close()


@pytest.fixture(scope="module")
def probe_group(settings):
    group = settings.group(f"tools-probe-{uuid.uuid4().hex[:6]}")
    make_group(settings, group, settings.topic("follows.events"))
    return group


def test_rapport_kafka_consumer_groups_lists_a_group_on_the_stack_s_broker(settings, probe_group):
    done = rapport_kafka(settings, "consumer-groups", "--list")

    assert done.returncode == 0, done.stderr
    assert probe_group in done.stdout.splitlines()


def test_rapport_kafka_consumer_groups_describes_a_group_s_offsets(settings, probe_group):
    done = rapport_kafka(settings, "consumer-groups", "--describe", "--group", probe_group)

    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(probe_group)]
    assert {row[1] for row in rows} == {settings.topic("follows.events")}
    assert len(rows) == settings.topic_partitions


def test_rapport_kafka_topics_lists_the_session_s_topics(settings):
    done = rapport_kafka(settings, "topics", "--list")

    assert done.returncode == 0, done.stderr
    listed = set(done.stdout.splitlines())
    assert {settings.topic("follows.events"), settings.topic("follows.events.dlq")} <= listed


def test_rapport_kafka_without_java_says_what_to_install(settings, tmp_path):
    done = rapport_kafka(settings, "topics", "--list", env={"JAVA_HOME": str(tmp_path / "no-java")})

    assert done.returncode == 1
    assert done.stderr.startswith("rapport kafka: ") and "install Java 17" in done.stderr


def test_a_session_s_teardown_leaves_none_of_its_groups_or_topics_on_the_broker(settings):
    session = settings.replace(namespace=f"sweep-{uuid.uuid4().hex[:8]}")
    scenario = session.replace(namespace=f"{session.namespace}-scenario")  # as tests make their own
    ensure_topics(session)
    ensure_topics(scenario)
    worker = Worker("follows", session).start()
    try:
        assert worker.wait_ready(60), "the follows worker's consumers got no partitions in 60s"
    finally:
        worker.shutdown()
    make_group(scenario, scenario.group("probe"), scenario.topic("follows.events"))
    groups, topics = names_in(settings, session.namespace)
    assert any(g.startswith(session.namespace + ".") for g in groups) and scenario.group("probe") in groups
    assert session.topic("follows.events") in topics and scenario.topic("follows.events") in topics

    left = drop_namespace(session)

    assert left == []
    assert eventually(lambda: names_in(settings, session.namespace) == ([], []), 30,
                      message="no group or topic of the namespace left")


def test_a_cache_holding_only_the_broker_s_jars_gets_the_tools_beside_them(settings, tmp_path):
    broker_libs = kafka.ensure_jars(settings)  # the cache the running stack was started from
    old = settings.replace(cache_dir=tmp_path)
    kafka.libs_dir(old).parent.mkdir(parents=True)
    kafka.libs_dir(old).symlink_to(broker_libs)  # as a cache made before the tools were shipped
    (kafka.libs_dir(old).parent / ".complete").write_text("made before the tools\n")
    before = sorted(p.name for p in broker_libs.iterdir())

    tools = kafka.ensure_tools(old)

    jars = {p.name for p in tools.glob("*.jar")}
    assert f"kafka-tools-{settings.kafka_version}.jar" in jars
    assert not jars & set(before), "jars the broker's libs hold already"
    assert sorted(p.name for p in broker_libs.iterdir()) == before
    made = (tools.stat().st_ino, (tools.parent / "tools.complete").stat().st_mtime_ns)
    assert kafka.ensure_tools(old) == tools
    assert (tools.stat().st_ino, (tools.parent / "tools.complete").stat().st_mtime_ns) == made  # not fetched again
