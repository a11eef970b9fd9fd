"""Members and their profiles, as plain functions over the profiles store.

A member exists from their first ``PUT /v1/profile`` (``member.registered``) until they close
their account (``member.closed``). Each change is written by one script with the member's next
version and its event, so other services' replicas apply a member's changes in order.

What a viewer sees of someone else's profile follows the relationship (``view``): ``full`` for
a 1st-degree connection, ``limited`` for anyone else while the member's ``profile_visibility``
is ``everyone``, ``minimal`` (name and headline) while it is ``connections``; a member blocked
either way, an id nobody registered and a closed account are all 404 ``member_not_found``, so
a blocked member cannot tell a block from an absence.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from services.profiles import store as scripts
from services.profiles.store import Keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.events.envelope import PENDING_VERSION
from shared.problems import Forbidden, NotFound

VISIBILITIES = ("everyone", "connections")
DEFAULT_VISIBILITY = "everyone"
TOP_SKILLS = 3
SHOWN_RECOMMENDATIONS = 50
FIELDS = ("name", "headline", "location", "industry", "about", "contact", "experience", "education", "skills",
          "accomplishments")
EMPTY: dict[str, Any] = {"headline": "", "location": "", "industry": "", "about": "", "contact": {},
                         "experience": [], "education": [], "skills": [], "accomplishments": []}


class MemberNotFound(NotFound):
    code = "member_not_found"


class ProfileRequired(Forbidden):
    code = "profile_required"


def not_found(member: str) -> MemberNotFound:
    return MemberNotFound(f"No member {member}.")


def profile_required() -> ProfileRequired:
    return ProfileRequired("Register first: PUT /v1/profile with at least your name.")


class AccountClosed(Forbidden):
    code = "account_closed"


def skill_key(skill: str) -> str:
    """The skill as endorsements count it: spacing tidied, case-folded (as the connections service)."""
    return " ".join(skill.split()).casefold()


def _fields(outbox: Outbox, event) -> dict[str, str]:
    return outbox.fields(event)


def _member_events(member: str, doc: dict, at: str) -> tuple:
    data = {"member": member, "name": doc["name"], "headline": doc.get("headline", ""), "at": at,
            "version": PENDING_VERSION}
    return new_event("profiles", "member.registered", data), new_event("profiles", "member.updated", data)


def _save(store: redis.Redis, keys: Keys, outbox: Outbox, member: str, doc: dict, mode: str, expected: str,
          announce: bool) -> tuple[str, int]:
    now = now_ms()
    registered, updated = _member_events(member, doc, rfc3339(now))
    fields = _fields(outbox, registered)
    outcome, version = scripts.SAVE_PROFILE(
        store, keys={"member": keys.member(member), "outbox": outbox.key_for(keys.tag(member))},
        mode=mode, expected=expected, doc=json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
        name=doc["name"], headline=doc.get("headline", ""), now=now, announce="1" if announce else "0",
        topic=fields["topic"], event_key=fields["key"], registered=fields["value"],
        updated=_fields(outbox, updated)["value"])
    if outcome == "closed":
        raise AccountClosed("This account was closed; its id cannot register again.")
    return outcome, int(version)


def put_profile(store: redis.Redis, keys: Keys, outbox: Outbox, member: str, profile: dict) -> bool:
    """Register ``member`` with ``profile`` or replace theirs whole; returns whether they are new."""
    doc = {**EMPTY, **profile}
    outcome, _ = _save(store, keys, outbox, member, doc, "put", "", announce=True)
    return outcome == "created"


def patch_profile(store: redis.Redis, keys: Keys, outbox: Outbox, member: str, changes: dict) -> None:
    """Change the given fields of ``member``'s profile. Concurrent patches never lose one another:
    the write is refused when the record changed since it was read, and tried again."""
    for _ in range(20):
        status, version, raw = store.hmget(keys.member(member), "status", "version", "doc")
        if status != "active":
            raise profile_required()
        old = json.loads(raw)
        doc = {**old, **changes}
        announce = (doc["name"], doc["headline"]) != (old["name"], old["headline"])
        outcome, _ = _save(store, keys, outbox, member, doc, "patch", version, announce)
        if outcome == "unregistered":
            raise profile_required()
        if outcome != "retry":
            return
    raise RuntimeError("profile kept changing while it was patched")


def set_visibility(store: redis.Redis, keys: Keys, outbox: Outbox, member: str, visibility: str) -> str:
    """Set who sees more than the name and headline; ``member.settings_changed`` on a change."""
    event = new_event("profiles", "member.settings_changed", {
        "member": member, "profile_visibility": visibility, "at": rfc3339(now_ms()), "version": PENDING_VERSION})
    fields = _fields(outbox, event)
    outcome, _ = scripts.SET_VISIBILITY(
        store, keys={"member": keys.member(member), "outbox": outbox.key_for(keys.tag(member))},
        visibility=visibility, topic=fields["topic"], event_key=fields["key"], event=fields["value"])
    if outcome in ("unregistered", "closed"):
        raise profile_required()
    return visibility


def visibility(store: redis.Redis, keys: Keys, member: str) -> str:
    status, value = store.hmget(keys.member(member), "status", "visibility")
    if status != "active":
        raise not_found(member)
    return value or DEFAULT_VISIBILITY


def close(store: redis.Redis, keys: Keys, outbox: Outbox, member: str) -> bool:
    """Close ``member``'s account: the record becomes a tombstone and ``member.closed`` goes out;
    the worker erases the rest. Idempotent; returns whether it was open."""
    now = now_ms()
    event = new_event("profiles", "member.closed", {"member": member, "at": rfc3339(now), "version": PENDING_VERSION})
    fields = _fields(outbox, event)
    outcome, _ = scripts.CLOSE(store, keys={"member": keys.member(member), "outbox": outbox.key_for(keys.tag(member))},
                               now=now, topic=fields["topic"], event_key=fields["key"], event=fields["value"])
    if outcome == "unregistered":
        raise profile_required()
    return outcome == "closed"


def is_active(store: redis.Redis, keys: Keys, member: str) -> bool:
    return store.hget(keys.member(member), "status") == "active"


# --- reading -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    member: str
    doc: dict
    visibility: str
    registered_ms: int
    updated_ms: int


def _skills(doc: dict, counts: dict[str, str]) -> list[dict]:
    return [{"name": s, "endorsements": int(counts.get(skill_key(s), 0))} for s in doc.get("skills", [])]


def _top_skills(skills: list[dict]) -> list[dict]:
    ranked = sorted(enumerate(skills), key=lambda pair: (-pair[1]["endorsements"], pair[0]))
    return [skill for _, skill in ranked[:TOP_SKILLS]]


def _current_positions(doc: dict) -> list[dict]:
    return [{"title": p["title"], "organization": p["organization"]}
            for p in doc.get("experience", []) if not p.get("end")]


def _recommendations(store: redis.Redis, keys: Keys, member: str) -> list[dict]:
    ids = store.zrevrange(keys.accepted(member), 0, SHOWN_RECOMMENDATIONS - 1)
    if not ids:
        return []
    with store.pipeline(transaction=False) as pipe:
        for rid in ids:
            pipe.hgetall(keys.recommendation(rid))
        records = pipe.execute()
    return [{"id": rid, "author": r["author"], "relationship": r["relationship"], "text": r["text"],
             "written_at": rfc3339(int(r["written_at"]))} for rid, r in zip(ids, records) if r]


def _render(store: redis.Redis, keys: Keys, member: str, record: dict, counts: dict, access: str) -> dict:
    doc = json.loads(record["doc"])
    body: dict[str, Any] = {"member": member, "access": access, "name": doc["name"], "headline": doc["headline"]}
    if access == "minimal":
        return body
    skills = _skills(doc, counts)
    body.update(location=doc["location"], industry=doc["industry"], about=doc["about"],
                current_positions=_current_positions(doc), top_skills=_top_skills(skills))
    if access == "limited":
        return body
    body.update(contact=doc["contact"], experience=[{**p, "current": not p.get("end")} for p in doc["experience"]],
                education=doc["education"], skills=skills, accomplishments=doc["accomplishments"],
                recommendations=_recommendations(store, keys, member))
    if access == "self":
        body.update(settings={"profile_visibility": record.get("visibility") or DEFAULT_VISIBILITY},
                    registered_at=rfc3339(int(record["registered_at"])),
                    updated_at=rfc3339(int(record["updated_at"])))
    return body


def own_profile(store: redis.Redis, keys: Keys, member: str) -> dict:
    """``member``'s own profile, whole, settings included (``access`` ``self``)."""
    with store.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.member(member))
        pipe.hgetall(keys.endorsement_counts(member))
        record, counts = pipe.execute()
    if record.get("status") != "active":
        raise not_found(member)
    return _render(store, keys, member, record, counts, "self")


def view(store: redis.Redis, keys: Keys, viewer: str, member: str) -> dict:
    """What ``viewer`` may see of ``member``'s profile (module docstring). One pipeline of reads
    in the member's shard (two for a connection: the accepted recommendations)."""
    if viewer == member:
        return own_profile(store, keys, member)
    with store.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.member(member))
        pipe.sismember(keys.blocks(member), viewer)
        pipe.sismember(keys.blocked_by(member), viewer)
        pipe.sismember(keys.connections(member), viewer)
        pipe.hgetall(keys.endorsement_counts(member))
        record, blocks, blocked_by, connected, counts = pipe.execute()
    if record.get("status") != "active" or blocks or blocked_by:
        raise not_found(member)
    if connected:
        access = "full"
    elif (record.get("visibility") or DEFAULT_VISIBILITY) == "everyone":
        access = "limited"
    else:
        access = "minimal"
    return _render(store, keys, member, record, counts, access)
