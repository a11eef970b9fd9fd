"""Registering members in the services' replicas, as their workers would from profiles.events.

Every service refuses to act towards a member who never registered, so a test registers the
members it uses first: straight into each service's replica through ``shared.members.apply``
(what the services' workers run on ``member.registered``), the way a bulk load would, without
a profiles service or a trip through Kafka.
"""
from __future__ import annotations

import uuid

import redis

from shared import store_client
from shared import members
from shared.clock import now_ms, rfc3339
from shared.settings import Settings

# The services that keep a member replica.
REPLICAS = ("connections", "follows", "feed", "notifications", "messaging")

_clients: dict[str, redis.Redis] = {}


def store(settings: Settings, service: str) -> redis.Redis:
    """A client of ``service``'s store under the test settings (one per store URL)."""
    url = settings.store_url(service)
    if url not in _clients:
        _clients[url] = store_client.connect(url, decode_responses=True)
    return _clients[url]


def apply(settings: Settings, name: str, data: dict, services=REPLICAS) -> None:
    """Apply one member event (``member.registered``, ``member.closed``...) to each replica."""
    data = {"at": rfc3339(now_ms()), **data}
    for service in services:
        members.apply(store(settings, service), service, settings, name, data)


def register(settings: Settings, *ids: str, version: int = 1, profile_visibility: str | None = None,
             services=REPLICAS) -> None:
    """Register ``ids`` (name = id) in every replica, with profile_visibility when given."""
    for member in ids:
        apply(settings, "member.registered", {"member": member, "name": member, "headline": "",
                                              "version": version}, services)
        if profile_visibility is not None:
            apply(settings, "member.settings_changed", {"member": member, "profile_visibility": profile_visibility,
                                                        "version": version + 1}, services)


def close(settings: Settings, member: str, version: int = 1_000_000, services=REPLICAS) -> None:
    """Record ``member``'s account as closed (a tombstone) in every replica."""
    apply(settings, "member.closed", {"member": member, "version": version}, services)


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
            register(self.settings, member)
            self.registered.add(member)
        return member

    def many(self, name: str, count: int) -> list[str]:
        """``count`` registered ids (``name0-…`` to ``name{count-1}-…``) in pipelined batches:
        a test of thousands of members registers them as a bulk load would, not one by one."""
        ids = [f"{name}{i}-{self.suffix}" for i in range(count)]
        fresh = [member for member in ids if member not in self.registered]
        for service in REPLICAS:
            members.register_many(store(self.settings, service), service, self.settings, fresh)
        self.registered.update(fresh)
        return ids

    def unregistered(self, name: str) -> str:
        return f"{name}-never-registered-{self.suffix}"
