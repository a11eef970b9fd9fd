"""Who exists: each service's own replica of the members the profiles service registered.

A member exists from their first profile (``member.registered`` on profiles.events). Every
service keeps, in its own store, one hash per member it has heard of,
``<service>:{s17}:member:<id>`` (the member's shard tag, ``shared.slots``), fed by its
worker from profiles.events (``handlers``) and read by its API (``lookup``) with one HGETALL,
so no request waits on another service on its hot path.

The member's changes are numbered by the profiles service (``version``, one sequence per
member). The ``APPLY`` script keeps the version of the profile (name, headline) and of the
settings (``profile_visibility``) it last applied and applies an event only when its version
is newer, so a replayed or retried older event changes nothing. ``member.closed`` leaves a
tombstone that stays: the id is closed for good, and its name and headline are dropped.

A miss in the replica (an id it has never heard of) is either someone who never registered or
someone who registered a few milliseconds ago, whose ``member.registered`` is still on its way.
``Directory`` tells them apart by asking the profiles API then, and only then (see
``ProfilesClient``); a tombstone is final and asks nobody.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable

import redis
from redis.cluster import RedisCluster
from prometheus_client import Counter

from shared.bus.consumer import Consumer
from shared.events import Event
from shared.logs import get_logger
from shared.lua import LuaScript
from shared.settings import Settings
from shared.slots import tag

log = get_logger(__name__)

ACTIVE, CLOSED = "active", "closed"
UNREAD = object()  # a member entry's state not read yet
DEFAULT_VISIBILITY = "everyone"
PROFILES_TOPIC = "profiles.events"
DEFAULT_PROFILES_BASE_URL = "http://localhost:8005"
# How long a request waits for the profiles API on a replica miss before taking the miss as final.
PROFILES_TIMEOUT_SECONDS = 2.0

FALLBACKS = Counter("rapport_member_fallbacks_total",
                    "Replica misses answered by asking the profiles API", ["service", "outcome"])


def key(service: str, settings: Settings, member: str) -> str:
    """The replica entry of ``member`` in ``service``'s store, in the member's shard."""
    return f"{service}:{tag(member, settings.shards)}:member:{member}"


# kind: profile (registered, updated) | settings | closed. Returns 1 when applied, 0 when the
# event is not newer than what the entry holds, or the member is closed.
APPLY = LuaScript("apply_member", keys=("member",),
                  args=("kind", "version", "name", "headline", "profile_visibility", "at"), source='''
if redis.call('HGET', K.member, 'state') == 'closed' then return 0 end
local version = tonumber(A.version)
if A.kind == 'closed' then
  redis.call('DEL', K.member)
  redis.call('HSET', K.member, 'state', 'closed', 'version', A.version, 'closed_at', A.at)
  return 1
end
local field = A.kind == 'settings' and 'settings_version' or 'profile_version'
if version <= tonumber(redis.call('HGET', K.member, field) or '0') then return 0 end
redis.call('HSET', K.member, 'state', 'active', field, A.version)
if A.kind == 'settings' then
  redis.call('HSET', K.member, 'profile_visibility', A.profile_visibility)
else
  redis.call('HSET', K.member, 'name', A.name, 'headline', A.headline)
end
local held = tonumber(redis.call('HGET', K.member, 'version') or '0')
if version > held then redis.call('HSET', K.member, 'version', A.version) end
return 1
''')

KINDS = {"member.registered": "profile", "member.updated": "profile",
         "member.settings_changed": "settings", "member.closed": "closed"}

# The member events every service's replica consumes, and the fields it relies on (each
# service's contract.py includes them).
CONSUMES: dict[str, tuple[str, ...]] = {
    "rapport.profiles.member.registered.v1": ("member", "name", "headline", "version"),
    "rapport.profiles.member.updated.v1": ("member", "name", "headline", "version"),
    "rapport.profiles.member.settings_changed.v1": ("member", "profile_visibility", "version"),
    "rapport.profiles.member.closed.v1": ("member", "at", "version"),
}


def apply(client: redis.Redis, service: str, settings: Settings, name: str, data: dict, *, pipe=None):
    """Apply one member event (its ``name`` and ``data``) to ``service``'s replica, if newer.

    Queued on ``pipe`` (a consumer's transaction) when given; else run on ``client`` and
    returns 1 when applied. Bulk loads and tests register members this way, as the worker does.
    """
    return APPLY(client, keys={"member": key(service, settings, data["member"])}, pipe=pipe,
                 kind=KINDS[name], version=int(data["version"]), name=data.get("name", ""),
                 headline=data.get("headline", ""),
                 profile_visibility=data.get("profile_visibility", DEFAULT_VISIBILITY), at=data.get("at", ""))


def register_many(client: redis.Redis, service: str, settings: Settings, ids, *, version: int = 1,
                  batch: int = 1000) -> None:
    """Register ``ids`` (name = id) in ``service``'s replica in pipelined batches, as a bulk load
    would (benchmarks): the same script, by SHA, each call on its own member's key."""
    client.script_load(APPLY.source)
    ids = list(ids)
    for start in range(0, len(ids), batch):
        # A cluster pipeline refuses scripts: one plain pipeline per node, each member's call
        # sent to the node serving its key's slot.
        pipes: dict[str, redis.client.Pipeline] = {}
        for member in ids[start:start + batch]:
            keys, args = APPLY.pack({"member": key(service, settings, member)},
                                    {"kind": "profile", "version": version, "name": member, "headline": "",
                                     "profile_visibility": DEFAULT_VISIBILITY, "at": ""})
            node = client.get_node_from_key(keys[0]) if isinstance(client, RedisCluster) else None
            name = node.name if node is not None else ""
            if name not in pipes:
                target = client.get_redis_connection(node) if node is not None else client
                pipes[name] = target.pipeline(transaction=False)
            pipes[name].evalsha(APPLY.sha, len(keys), *keys, *args)
        for pipe in pipes.values():
            pipe.execute()


def handlers(service: str, erase: Callable | None = None) -> dict[str, Callable]:
    """The member handlers a service's worker runs on profiles.events (event name → handler).

    ``erase(member, fx)``, when given, runs on ``member.closed`` beside the tombstone: it queues
    on ``fx.tx`` the erasure of what the service holds of the member. It reads what is left and
    erases that, so a retried or replayed ``member.closed`` finds less and changes no count twice.
    """
    def on_member_event(event: Event, fx) -> None:
        apply(fx.store, service, fx.settings, event.name, event.data, pipe=fx.tx)
        if erase is not None and event.name == "member.closed":
            erase(event.data["member"], fx)
    return {name: on_member_event for name in KINDS}


def consumer(service: str, erase: Callable | None = None):
    """The consumer keeping ``service``'s member replica: group ``<service>.members``; with
    ``erase``, it also erases a closed account's data (``handlers``)."""
    return Consumer(name=f"{service}.members", service=service, topics=(PROFILES_TOPIC,),
                    handlers=handlers(service, erase))


@dataclass(frozen=True)
class Member:
    """What a service knows of a member: ``state`` active or closed (a tombstone)."""
    id: str
    state: str
    name: str = ""
    headline: str = ""
    profile_visibility: str = DEFAULT_VISIBILITY
    version: int = 0

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


def lookup(store: redis.Redis, service: str, settings: Settings, member: str) -> Member | None:
    """``member`` as ``service``'s replica holds them, or None when it never heard of them."""
    return from_entry(member, store.hgetall(key(service, settings, member)))


def from_entry(member: str, entry: dict) -> Member | None:
    """``member`` from their replica entry as HGETALL read it (empty: None, never heard of)."""
    if not entry:
        return None
    return Member(member, entry.get("state", ACTIVE), entry.get("name", ""), entry.get("headline", ""),
                  entry.get("profile_visibility", DEFAULT_VISIBILITY), int(entry.get("version", 0)))


def profiles_base_url(settings: Settings) -> str:
    """Where the profiles API answers: its base URL in the settings, else
    ``RAPPORT_PROFILES_BASE_URL``, else the local stack's port 8005."""
    return (settings.base_urls.get("profiles") or os.environ.get("RAPPORT_PROFILES_BASE_URL")
            or DEFAULT_PROFILES_BASE_URL).rstrip("/")


@dataclass(frozen=True)
class Remote:
    """The profiles API's answer on a miss: ``found`` True (200), False (404), None (no answer);
    ``access`` is the view a profile read serves the caller (``full``, ``limited``, ``minimal``)."""
    found: bool | None
    access: str | None = None


class ProfilesClient:
    """Asks the profiles API, with the caller's own token, what it would answer them.

    Used on a replica miss only. The caller's own Authorization header goes along, so the
    profiles service applies its own rules to the caller (a blocked or closed member is a 404
    there too), and this service holds no credential of its own.
    """

    def __init__(self, base_url: str, timeout: float = PROFILES_TIMEOUT_SECONDS):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def own_profile(self, authorization: str) -> Remote:
        """Whether the caller has registered: ``GET /v1/profile``."""
        return self._get("/v1/profile", authorization)

    def profile_of(self, member: str, authorization: str) -> Remote:
        """Whether ``member`` exists for the caller: ``GET /v1/members/{id}/profile``."""
        return self._get(f"/v1/members/{urllib.parse.quote(member, safe='')}/profile", authorization)

    def _get(self, path: str, authorization: str) -> Remote:
        request = urllib.request.Request(self.base_url + path, headers={
            "Authorization": authorization, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read() or b"{}")
                return Remote(True, body.get("access") if isinstance(body, dict) else None)
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500:
                return Remote(False)
            log.warning("profiles API answered an error", path=path, status=exc.code)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("profiles API unreachable", path=path, error=repr(exc))
        return Remote(None)


class Directory:
    """``service``'s answer to "does this member exist": the replica first, the profiles API
    only on a miss (a tombstone is final). A profiles API that does not answer leaves the miss
    standing: the replica is the record, the API only closes the moments after a registration."""

    def __init__(self, service: str, settings: Settings, store: redis.Redis, profiles: ProfilesClient | None = None):
        self.service = service
        self.settings = settings
        self.store = store
        self.profiles = profiles or ProfilesClient(profiles_base_url(settings))

    def replica(self, member: str) -> Member | None:
        return lookup(self.store, self.service, self.settings, member)

    def key(self, member: str) -> str:
        """The key of ``member``'s entry in the replica."""
        return key(self.service, self.settings, member)

    def caller_registered(self, caller: str, authorization: str, state: str | object = UNREAD) -> bool:
        """Whether the caller has a profile (and has not closed it). ``state``: their entry's
        state when the request read it already ('' when there is none), else it is read here."""
        if state is UNREAD:
            found = self.replica(caller)
            state = found.state if found is not None else ""
        if state:
            return state == ACTIVE
        return self._count(self.profiles.own_profile(authorization)).found is True

    def member(self, member: str, authorization: str,
               entry: dict | object = UNREAD) -> tuple[Member | None, Remote | None]:
        """The replica's entry of ``member``, and on a miss what the profiles API said.
        ``entry``: the entry as the request read it already (HGETALL of ``key``), else it is read here."""
        found = self.replica(member) if entry is UNREAD else from_entry(member, entry)
        if found is not None:
            return found, None
        return None, self._count(self.profiles.profile_of(member, authorization))

    def exists(self, member: str, authorization: str, entry: dict | object = UNREAD) -> bool:
        """Whether ``member`` exists (registered, not closed) as far as the caller may know."""
        found, remote = self.member(member, authorization, entry)
        return found.active if found is not None else remote.found is True

    def _count(self, remote: Remote) -> Remote:
        outcome = {True: "found", False: "not_found", None: "no_answer"}[remote.found]
        FALLBACKS.labels(self.service, outcome).inc()
        return remote
