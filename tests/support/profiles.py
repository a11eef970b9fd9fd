"""What the profiles tests share (imported by their modules): registering members, connecting them
through the connections service (whose events reach the profiles worker through Kafka), and
waiting for the replica."""
from __future__ import annotations

import pytest

from tests.support.infra import eventually


def profile_of(name: str, **fields) -> dict:
    return {"name": name, **fields}


@pytest.fixture
def profiles_api(apps, workers):
    workers("connections")
    workers("profiles")
    return apps("profiles")


@pytest.fixture
def register(profiles_api, auth):
    """``register("ada", name="Ada Lovelace", ...)``: a first PUT /v1/profile, asserted 201."""
    def register(member: str, name: str | None = None, **fields) -> dict:
        response = profiles_api.put("/v1/profile", json={"name": name or member, **fields}, headers=auth(member))
        assert response.status_code == 201, response.get_json()
        return response.get_json()
    return register


@pytest.fixture
def connected(connect, profiles_api, auth):
    """``connected(a, b)``: connect them through the connections API and wait until the profiles
    service's replica knows (b sees a's full view)."""
    def connected(a: str, b: str) -> None:
        connect(a, b)
        eventually(lambda: profiles_api.get(f"/v1/members/{a}/profile", headers=auth(b)).get_json().get("access")
                   == "full", message=f"profiles knows {a} and {b} are connected")
    return connected
