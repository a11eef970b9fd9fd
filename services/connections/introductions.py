"""Introductions (PRODUCT.md, Network): a member asks a mutual connection to introduce them
to a 2nd-degree member with a note; the introducer forwards it (the target receives an
invitation that names the introducer) or declines. The requester hears the outcome through
the notifications of ``introduction.forwarded`` and ``introduction.declined``.

Only the introducer decides; the requester gets 403 when trying to, anyone else 404 (like
invitations). Forwarding sends the invitation under the invitation rules, in one step with
marking the introduction forwarded (see ``invitations.send``).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from services.connections import invitations
from services.connections import store as keys
from services.connections.invitations import Invitation
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.problems import Conflict, Forbidden, Invalid, NotFound
from shared.settings import Settings

MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Introduction:
    id: str
    requester: str
    target: str
    via: str
    note: str | None
    status: str  # pending | forwarded | declined
    created_at_ms: int
    decided_at_ms: int | None
    invitation_id: str | None


def _from_hash(raw: dict) -> Introduction | None:
    if not raw:
        return None
    return Introduction(raw["id"], raw["requester"], raw["target"], raw["via"], raw.get("note") or None,
                        raw["status"], int(raw["created_at"]),
                        int(raw["decided_at"]) if raw.get("decided_at") else None, raw.get("invitation_id") or None)


def _not_found() -> NotFound:
    return NotFound("No such introduction.", code="introduction_not_found")


def load(store: redis.Redis, introduction_id: str) -> Introduction | None:
    if not introduction_id or len(introduction_id) > MAX_ID_LENGTH or keys.id_tag(introduction_id) is None:
        return None
    return _from_hash(store.hgetall(keys.introduction(introduction_id)))


def get(store: redis.Redis, member: str, introduction_id: str) -> Introduction:
    """The introduction, for its requester and introducer only (and the target once forwarded)."""
    found = load(store, introduction_id)
    if found is None or member not in (found.requester, found.via) and not (
            member == found.target and found.status == "forwarded"):
        raise _not_found()
    return found


def request(store: redis.Redis, outbox: Outbox, requester: str, target: str, via: str,
            note: str | None = None) -> Introduction:
    """``requester`` asks ``via`` to introduce them to ``target``.

    422 ``not_a_mutual_connection`` unless ``via`` is connected to both; 409 when the two are
    already connected, an invitation is open between them, or the same introduction is pending;
    403 ``introduction_refused`` when a block stands between requester and target.
    """
    if requester == target:
        raise Invalid({"target": ["Ask to be introduced to another member, not yourself."]},
                      code="cannot_introduce_self")
    if via in (requester, target):
        raise Invalid({"via": ["The introducer must be a third member, connected to both."]},
                      code="not_a_mutual_connection")
    note = note or None
    introduction_id = keys.new_id(requester, target, uuid.uuid4().hex)
    now = now_ms()
    event = new_event("connections", "introduction.requested", {
        "introduction_id": introduction_id, "requester": requester, "target": target, "via": via, "note": note,
        "at": rfc3339(now)})
    # The introducer's connections (their projection, one slot) say whether they know both; the
    # introduction itself is decided in the requester and target's pair slot.
    mutual = all(score is not None for score in store.zmscore(keys.connections(via), [requester, target]))
    # The footprints of the three (each one's slot, one round trip) before the introduction, so
    # closing any of them finds it; an introduction refused below leaves entries erasure skips.
    with store.pipeline(transaction=False) as pipe:
        for member in (requester, target, via):
            pipe.sadd(keys.introductions(member), introduction_id)
        pipe.execute()
    reply = keys.INTRODUCE(store, keys={
        "relationship": keys.relationship(requester, target), "introduction": keys.introduction(introduction_id),
        "outbox": outbox.key_for(keys.pair_tag(requester, target)),
    }, requester=requester, target=target, via=via, id=introduction_id, now=now, note=note or "",
        mutual="1" if mutual else "0", event=outbox.xadd_args(event))
    code = reply[0]
    if code == "requested":
        return Introduction(introduction_id, requester, target, via, note, "pending", now, None, None)
    if code == "refused":
        raise Forbidden(f"You cannot be introduced to {target}.", code="introduction_refused")
    if code == "not_mutual":
        raise Invalid({"via": [f"{via} is not connected to both you and {target}."]},
                      code="not_a_mutual_connection")
    if code == "already_connected":
        raise Conflict(f"You are already connected to {target}.", code="already_connected")
    if code == "invitation_pending":
        raise Conflict(f"An invitation between you and {target} is already open.", code="invitation_pending",
                       invitation_id=reply[1])
    if code == "introduction_pending":
        raise Conflict(f"An introduction to {target} is already pending.", code="introduction_pending",
                       introduction_id=reply[1])
    raise RuntimeError(f"unexpected reply from the introduce script: {reply!r}")


def _decidable(store: redis.Redis, member: str, introduction_id: str) -> Introduction:
    found = load(store, introduction_id)
    if found is None or member not in (found.requester, found.via):
        raise _not_found()
    if member != found.via:
        raise Forbidden("Only the introducer can forward or decline an introduction.", code="not_introducer")
    if found.status != "pending":
        raise Conflict(f"The introduction is {found.status}, no longer pending.", code="introduction_not_pending",
                       introduction_status=found.status)
    return found


def _decided_data(found: Introduction) -> dict:
    return {"introduction_id": found.id, "requester": found.requester, "target": found.target, "via": found.via}


def forward(store: redis.Redis, outbox: Outbox, settings: Settings, member: str,
            introduction_id: str) -> tuple[Introduction, Invitation]:
    """The introducer forwards: the requester's invitation, with the note, goes to the target
    and names the introducer. The invitation rules apply (a limit, a block or an existing
    connection refuses it, and the introduction stays pending)."""
    found = _decidable(store, member, introduction_id)
    invitation = invitations.send(store, outbox, settings, found.requester, found.target, found.note,
                                  introduction=(found.id, found.via, _decided_data(found)))
    return load(store, found.id), invitation


def decline(store: redis.Redis, outbox: Outbox, member: str, introduction_id: str) -> Introduction:
    """The introducer declines; the requester is told (``introduction.declined``), the target never knows."""
    found = _decidable(store, member, introduction_id)
    now = now_ms()
    event = new_event("connections", "introduction.declined", {**_decided_data(found), "at": rfc3339(now)})
    reply = keys.DECLINE_INTRODUCTION(store, keys={
        "relationship": keys.relationship(found.requester, found.target), "introduction": keys.introduction(found.id),
        "outbox": outbox.key_for(keys.pair_tag(found.requester, found.target)),
    }, caller=member, now=now, event=outbox.xadd_args(event))
    if reply[0] == "introduction_not_pending":
        raise Conflict(f"The introduction is {reply[1]}, no longer pending.", code="introduction_not_pending",
                       introduction_status=reply[1])
    if reply[0] != "declined":
        raise _not_found()
    return load(store, found.id)
