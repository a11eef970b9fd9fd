"""Integration tests: each service's HTTP API and worker against the real Kafka and Redis.

The fixtures they use (``settings``, ``apps``, ``workers``, ``auth``) live in tests/conftest.py,
shared with the contract and fuzz suites; ``unique`` (registered members) and ``connect`` are
the integration tests' own.
"""
from __future__ import annotations

import pytest

from shared import members as shared_members

from tests.support import members
from tests.support.cluster_stack import _own_cluster_env, own_cluster_stack  # noqa: F401 (fixtures)
from tests.support.infra import eventually


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


# --- the profiles tests' --------------------------------------------------------------

@pytest.fixture
def profiles_api(apps, workers):
    workers("connections")
    workers("profiles")
    return apps("profiles")


@pytest.fixture
def register(profiles_api, auth):
    """``register("ada", name="Ada Lovelace", ...)``: a first PUT /v1/profile, asserted 201
    (the profiles tests' members register first, as every member must)."""
    def register(member: str, name: str | None = None, **fields) -> dict:
        response = profiles_api.put("/v1/profile", json={"name": name or member, **fields}, headers=auth(member))
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return register


@pytest.fixture
def connected(connect, profiles_api, auth, settings):
    """``connected(a, b)``: once the connections service's member replica has heard of both
    (from profiles.events), connect them through the connections API and wait until the profiles
    service's replica knows (b sees a's full view)."""
    store = members.store(settings, "connections")

    def connected(a: str, b: str) -> None:
        for member in (a, b):
            eventually(lambda: shared_members.lookup(store, "connections", settings, member) is not None,
                       message=f"the connections service's replica knows {member}")
        connect(a, b)
        eventually(lambda: profiles_api.get(f"/v1/members/{a}/profile", headers=auth(b)).get_json().get("access")
                   == "full", message=f"profiles knows {a} and {b} are connected")
    return connected


@pytest.fixture
def two_instances(settings):
    """Two follows apps (two API processes, as far as a write limit of 3 a minute is concerned)
    on one store."""
    from services.follows.app import create_app

    limited = settings.replace(write_rate_limits="3/minute")
    return [create_app({"TESTING": True}, settings=limited).test_client() for _ in range(2)]
