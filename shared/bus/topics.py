"""The Kafka topics Rapport uses, and their creation.

Each producing service has one event topic; work topics spread a service's own jobs over
its workers; every one of them has a ``<topic>.dlq`` for what its consumers could not read.
"""
from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from shared.settings import Settings

EVENT_TOPICS = ("connections.events", "follows.events", "feed.events", "profiles.events",
                "messaging.events")
WORK_TOPICS = ("feed.fanout",)
DLQ_SUFFIX = ".dlq"


def dlq(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return topic + DLQ_SUFFIX


def all_topics(settings: Settings) -> list[str]:
    """Every topic's name in ``settings.namespace``: the topics, then their DLQs."""
    names = EVENT_TOPICS + WORK_TOPICS
    return [settings.topic(t) for t in names] + [settings.topic(dlq(t)) for t in names]


def ensure_topics(settings: Settings, partitions: int | None = None, timeout: float = 30.0) -> list[str]:
    """Create the missing topics and wait until every partition of every topic has a leader.

    Safe to call at any time and from several processes at once. Returns the topics it created.
    """
    wanted = all_topics(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="rapport-topics")
    try:
        missing = [t for t in wanted if t not in set(admin.list_topics())]
        created = []
        if missing:
            count = partitions or settings.topic_partitions
            # Three brokers (the cluster stack): three copies, two in sync before acks=all answers.
            options = {"num_partitions": count, "replication_factor": settings.topic_replication_factor,
                       "configs": {"min.insync.replicas": str(settings.topic_min_insync_replicas)}}
            result = admin.create_topics({t: dict(options) for t in missing}, raise_errors=False)
            for topic in result["topics"]:
                code = topic["error_code"]
                if code == 0:
                    created.append(topic["name"])
                elif code != TopicAlreadyExistsError.errno:  # someone else made it meanwhile: fine
                    raise RuntimeError(f"creating topic {topic['name']}: error {code} {topic.get('error_message')}")
        # A created topic is not usable until metadata shows a leader for each partition.
        admin.wait_for_topics(wanted, timeout_ms=int(timeout * 1000))
        servers = settings.kafka_bootstrap.split(",")
        if created and len(servers) > 1:
            _wait_on_every_broker(servers, wanted, timeout)
        return created
    finally:
        admin.close()


def _wait_on_every_broker(servers: list[str], topics: list[str], timeout: float) -> None:
    """Wait until each broker's own metadata shows every partition of ``topics`` with a leader.

    Brokers learn of a new topic from the controller a moment apart: a consumer group whose
    leader asks one not yet told assigns none of that topic's partitions, and stays so until a
    later metadata refresh. A client bootstrapped on one server asks that server first.
    """
    deadline = time.monotonic() + timeout
    for server in servers:
        while True:
            one = KafkaAdminClient(bootstrap_servers=[server], client_id="rapport-topics")
            try:
                described = one.describe_topics(topics)
                if all(t.get("error_code", 0) == 0 and t["partitions"]
                       and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in t["partitions"])
                       for t in described):
                    break
            except KafkaError:
                pass
            finally:
                one.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the topics are not known to the broker at {server} after {timeout:.0f}s")
            time.sleep(0.2)


def in_namespace(name: str, namespace: str) -> bool:
    """Whether topic or group ``name`` belongs to ``namespace`` or to a namespace made from it
    (``<namespace>-fanout``: tests give a scenario a namespace of its own that way)."""
    return name.startswith((namespace + ".", namespace + "-"))


def _admin(settings: Settings, timeout: float) -> KafkaAdminClient:
    if not settings.namespace:
        raise ValueError("refusing to drop the un-namespaced topics and groups of the stack")
    return KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","), client_id="rapport-topics",
                            request_timeout_ms=int(timeout * 1000))


def drop_topics(settings: Settings, timeout: float = 30.0) -> None:
    """Delete the topics of this namespace and of those made from it (test sessions and
    benchmarks clean up after themselves)."""
    admin = _admin(settings, timeout)
    try:
        doomed = [t for t in admin.list_topics() if in_namespace(t, settings.namespace)]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=int(timeout * 1000))
    finally:
        admin.close()


def drop_groups(settings: Settings, timeout: float = 10.0) -> list[str]:
    """Delete the consumer groups of this namespace and of those made from it; return the ids
    of those still there after ``timeout``.

    Call it once the consumers are closed: the broker deletes only an empty group. A consumer
    that has just left may keep its group busy a moment (its last commit, a rebalance), so
    refusals are retried until ``timeout``; a group whose member died without leaving stays
    until the member's session times out, and is reported.
    """
    admin = _admin(settings, timeout)
    deadline = time.monotonic() + timeout
    try:
        while True:
            doomed = [g["group_id"] for g in admin.list_groups() if in_namespace(g["group_id"], settings.namespace)]
            if not doomed:
                return []
            outcome = admin.delete_groups(doomed)
            left = sorted(g for g, result in outcome.items() if result not in ("OK", "GroupIdNotFoundError"))
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.5)
    finally:
        admin.close()


def drop_namespace(settings: Settings) -> list[str]:
    """What a test session or a benchmark runs last: delete its consumer groups, then its
    topics; return the groups that could not be deleted (see ``drop_groups``)."""
    left = drop_groups(settings)
    drop_topics(settings)
    return left
