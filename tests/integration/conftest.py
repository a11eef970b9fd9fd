"""Integration tests: each service's HTTP API and worker against the real Kafka and Redis.

The fixtures they use (``settings``, ``apps``, ``workers``, ``auth``) live in tests/conftest.py,
shared with the contract and fuzz suites; ``unique`` (registered members) and ``connect`` are
the integration tests' own.
"""
from __future__ import annotations

import uuid

import pytest

from tests.support import members


class UniqueMembers:
    """``unique("ada")`` → a member id no other test uses (``ada-1f2e3d4c``), registered in every
    service's member replica; ``unique.unregistered("ghost")`` → one nobody registered."""

    def __init__(self, settings):
        self.settings = settings
        self.suffix = uuid.uuid4().hex[:8]
        self.registered: set[str] = set()

    def __call__(self, name: str) -> str:
        member = f"{name}-{self.suffix}"
        if member not in self.registered:
            members.register(self.settings, member)
            self.registered.add(member)
        return member

    def unregistered(self, name: str) -> str:
        return f"{name}-never-registered-{self.suffix}"


@pytest.fixture
def unique(settings):
    return UniqueMembers(settings)


@pytest.fixture
def connect(apps, auth):
    """``connect("ada", "grace")``: ada invites grace and grace accepts, through the connections API."""
    api = apps("connections")

    def connect(a: str, b: str) -> None:
        invitation = api.post("/v1/invitations", json={"invitee": b}, headers=auth(a))
        assert invitation.status_code == 201, invitation.json
        accepted = api.post(f"/v1/invitations/{invitation.json['id']}/accept", headers=auth(b))
        assert accepted.status_code == 200, accepted.json
    return connect
