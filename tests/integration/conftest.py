"""Integration tests: each service's HTTP API and worker against the real Kafka and Redis."""
from __future__ import annotations

import pytest

from shared.auth import mint_token
from shared.bus.topics import drop_topics, ensure_topics
from shared.bus.worker import Worker
from tests.support.infra import require_infrastructure


@pytest.fixture(scope="session")
def infra(test_settings):
    """The real Kafka and Redis, with this session's topics created."""
    require_infrastructure(test_settings)
    ensure_topics(test_settings)
    yield test_settings
    drop_topics(test_settings)


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
    for worker in started.values():
        worker.shutdown()


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
