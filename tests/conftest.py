"""Fixtures shared by every test folder.

Integration, contract and e2e tests talk to the real Kafka and Redis started by
``rapport up --infra-only`` (``make test`` does it). When either cannot be reached the
session fails at once and says so: these tests never skip.
"""
from __future__ import annotations

import os
import uuid

import pytest

from shared.settings import load_settings

# Stores of the test run live on their own logical databases, apart from the local stack's.
TEST_STORE_DB = {"connections": 10, "follows": 11, "feed": 12, "notifications": 13}
TEST_CACHE_DB = 1


@pytest.fixture(scope="session")
def test_settings():
    """Settings for this test session: its own Kafka namespace and Redis databases."""
    base = load_settings()
    namespace = os.environ.get("RAPPORT_TEST_NAMESPACE") or f"test-{uuid.uuid4().hex[:8]}"
    return base.replace(
        namespace=namespace,
        store_urls={s: f"redis://127.0.0.1:{base.store_port}/{db}" for s, db in TEST_STORE_DB.items()},
        cache_url=f"redis://127.0.0.1:{base.cache_port}/{TEST_CACHE_DB}",
    )


@pytest.fixture
def unique():
    """``unique("ada")`` → a member id no other test uses, e.g. ``ada-1f2e3d4c``."""
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"
