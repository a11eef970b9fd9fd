"""Fuzzing each service's API from its own OpenAPI document (schemathesis), in-process over WSGI,
against the real Redis and Kafka namespace of the test session."""
from __future__ import annotations

import importlib
import uuid

import pytest

from shared.auth import mint_token
from tests.support import members


@pytest.fixture(scope="session")
def service_app(settings):
    """``service_app("follows")`` → that service's WSGI app, wired to the session's settings."""
    made = {}

    def app(service: str):
        if service not in made:
            module = importlib.import_module(f"services.{service}.app")
            # One member makes every call of the session: under the write limits most writes would
            # be 429s after the first minute, and the fuzzer would stop reaching the views.
            # The fuzzer is connected to no one: a refused send need not wait for a connection to arrive.
            made[service] = module.create_app({"TESTING": True}, settings=settings.replace(
                write_rate_limits="", messaging_connection_wait_ms=0))
        return made[service]

    return app


@pytest.fixture(scope="session")
def fuzzer(settings):
    """Headers authenticating the member the fuzzer acts as: one unique id for the session, registered."""
    member = f"fuzzer-{uuid.uuid4().hex[:8]}"
    members.register(settings, member)
    return {"Authorization": f"Bearer {mint_token(member, settings.jwt_secret)}"}


@pytest.fixture
def unique(settings):
    """``unique("ada")`` → a registered member id no other test uses."""
    return members.UniqueMembers(settings)
