"""Integration tests: each service's HTTP API and worker against the real Kafka and Redis.

The fixtures they use (``settings``, ``apps``, ``workers``, ``auth``) live in tests/conftest.py,
shared with the contract and fuzz suites; ``unique`` (registered members) and ``connect`` are
the integration tests' own.
"""
from __future__ import annotations

import pytest

from tests.support import members


@pytest.fixture
def unique(settings):
    return members.UniqueMembers(settings)


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
