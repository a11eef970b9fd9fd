"""Fixtures shared by every test folder.

Integration, contract and e2e tests talk to the real Kafka and Redis started by
``rapport up --infra-only`` (``make test`` does it). When either cannot be reached the
session fails at once and says so: these tests never skip.
"""
from __future__ import annotations

import os
import uuid
import warnings

import pytest

from shared.auth import mint_token
from shared.bus.topics import drop_namespace, ensure_topics
from shared.bus.worker import Worker
from shared.settings import load_settings
from tests.support.infra import free_ports, require_infrastructure

# The tests run the local stack's way: the published development secret is accepted only so.
# Set before anything reads the settings, and inherited by every process the tests start.
if not os.environ.get("RAPPORT_ENV"):
    os.environ["RAPPORT_ENV"] = "local"

# Stores of the test run live on their own logical databases, apart from the local stack's.
# Profiles shares the follows database and messaging the notifications one (their keys all start
# with ``profiles:`` / ``messaging:``): the 16 are taken.
TEST_STORE_DB = {"connections": 10, "follows": 11, "feed": 12, "notifications": 13, "profiles": 11,
                 "messaging": 13}
TEST_CACHE_DB = 1


# RAPPORT_TEST_STACK=cluster: the session runs on the cluster stack (`rapport up --cluster
# --infra-only`) instead: its three brokers and its Redis Cluster for every store and the cache.
TEST_STACK = os.environ.get("RAPPORT_TEST_STACK", "default")


@pytest.fixture(scope="session")
def test_settings():
    """Settings for this test session: its own Kafka namespace and Redis databases (on the
    cluster stack, which has no databases, the namespace and unique ids keep runs apart)."""
    base = load_settings()
    namespace = os.environ.get("RAPPORT_TEST_NAMESPACE") or f"test-{uuid.uuid4().hex[:8]}"
    # A replica miss asks the profiles API (shared/members.py): in the tests, a port where nothing
    # answers, so a miss stands as it does with no profiles service; the tests of that fallback
    # start their own server.
    nowhere, = free_ports(1)
    if TEST_STACK == "cluster":
        from shared.stack import cluster

        stack = cluster.settings_for(base)
        return base.replace(namespace=namespace, kafka_bootstrap=stack.kafka_bootstrap, store_urls=stack.store_urls,
                            cache_url=stack.cache_url, store_replicas_ack=stack.store_replicas_ack,
                            topic_replication_factor=stack.topic_replication_factor,
                            topic_min_insync_replicas=stack.topic_min_insync_replicas,
                            base_urls={**base.base_urls, "profiles": f"http://127.0.0.1:{nowhere}"})
    if TEST_STACK != "default":
        raise pytest.UsageError(f"RAPPORT_TEST_STACK={TEST_STACK!r}: 'default' or 'cluster'")
    return base.replace(
        namespace=namespace,
        store_urls={s: f"redis://127.0.0.1:{base.store_port}/{db}" for s, db in TEST_STORE_DB.items()},
        cache_url=f"redis://127.0.0.1:{base.cache_port}/{TEST_CACHE_DB}",
        base_urls={**base.base_urls, "profiles": f"http://127.0.0.1:{nowhere}"},
    )


@pytest.fixture
def unique():
    """``unique("ada")`` → a member id no other test uses, e.g. ``ada-1f2e3d4c``."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"


@pytest.fixture(scope="session")
def infra(test_settings):
    """The real Kafka and Redis, with this session's topics created.

    At the end the session's consumer groups and topics (its namespace's and those of the
    namespaces tests made from it) are deleted: every fixture that runs consumers depends on
    this one, so they are closed by then."""
    require_infrastructure(test_settings)
    ensure_topics(test_settings)
    yield test_settings
    left = drop_namespace(test_settings)
    if left:
        warnings.warn(f"consumer groups still busy, left on the broker: {left}")


@pytest.fixture(scope="session")
def settings(infra):
    return infra


@pytest.fixture(scope="session")
def workers(settings):
    """Each service's worker (relay + consumers), started once per session on first use."""
    started: dict[str, Worker] = {}

    def start(service: str) -> Worker:
        if service not in started:
            worker = Worker(service, settings).start()
            assert worker.wait_ready(60), f"{service} worker's consumers got no partitions in 60s"
            started[service] = worker
        return started[service]

    yield start
    halted = {f"{service}: {name}": why for service, worker in started.items()
              for name, why in worker.halted().items()}
    for worker in started.values():
        worker.stop.set()  # all at once: each then leaves its groups beside the others
    for worker in started.values():
        worker.shutdown()
    # A session worker stopped by its DLQ limit fails the tests after it for no reason of theirs:
    # a test publishing what is not an event does it on a topic of its own.
    assert not halted, f"session workers stopped by their DLQ limit: {halted}"


@pytest.fixture(scope="session")
def apps(settings):
    """``apps("follows")`` → a Flask test client of that service, wired to the test settings."""
    import importlib

    clients = {}

    def client(service: str):
        if service not in clients:
            module = importlib.import_module(f"services.{service}.app")
            clients[service] = module.create_app({"TESTING": True}, settings=settings).test_client()
        return clients[service]

    return client


@pytest.fixture(scope="session")
def auth(settings):
    """``auth("ada")`` → headers that authenticate as ``ada``."""
    return lambda member: {"Authorization": f"Bearer {mint_token(member, settings.jwt_secret)}"}
