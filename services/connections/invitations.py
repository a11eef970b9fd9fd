"""The rules of invitations (PRODUCT.md, Invitations), as plain functions over the store.

Every transition is one Lua script in ``store``, in the pair's slot, that checks and changes the
invitation, the pair's relationship record and the outbox together: an accept racing a
withdrawal has exactly one winner, and two members inviting each other at once end up
connected once. The members' lists are projections of the record (``projections``).
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

import redis

from services.connections import projections
from services.connections import store as keys
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.events.envelope import PENDING_VERSION
from shared.pages import zset_page
from shared.problems import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from shared.settings import Settings

DAY_MS = 24 * 3600 * 1000
WEEK_MS = 7 * DAY_MS
MAX_ID_LENGTH = 64


@dataclass(frozen=True)
class Invitation:
    id: str
    inviter: str
    invitee: str
    message: str | None
    status: str  # as stored: pending | accepted | ignored | withdrawn
    created_at_ms: int
    decided_at_ms: int | None
    introduced_by: str | None = None  # the mutual connection who forwarded an introduction

    def seen_by(self, member: str) -> "Invitation":
        """The invitation as ``member`` sees it: ignoring is silent, so the inviter sees pending."""
        if self.status == "ignored" and member == self.inviter:
            return Invitation(self.id, self.inviter, self.invitee, self.message, "pending",
                              self.created_at_ms, None, self.introduced_by)
        return self


def _from_hash(raw: dict) -> Invitation | None:
    if not raw:
        return None
    return Invitation(raw["id"], raw["inviter"], raw["invitee"], raw.get("message") or None, raw["status"],
                      int(raw["created_at"]), int(raw["decided_at"]) if raw.get("decided_at") else None,
                      raw.get("introduced_by") or None)


def load(store: redis.Redis, invitation_id: str) -> Invitation | None:
    if not invitation_id or len(invitation_id) > MAX_ID_LENGTH or keys.id_tag(invitation_id) is None:
        return None
    return _from_hash(store.hgetall(keys.invitation(invitation_id)))


def get(store: redis.Redis, member: str, invitation_id: str) -> Invitation:
    """The invitation as ``member`` sees it; 404 unless they are its inviter or invitee."""
    found = load(store, invitation_id)
    if found is None or member not in (found.inviter, found.invitee):
        raise _not_found()
    return found.seen_by(member)


def _not_found() -> NotFound:
    return NotFound("No such invitation.", code="invitation_not_found")


def _limit_lifts(until_ms: int, now: int) -> dict:
    return {"retry_after": max(1, math.ceil((until_ms - now) / 1000)), "lifts_at": rfc3339(until_ms)}


def _refusal(reply: list, inviter: str, invitee: str, now: int, settings: Settings) -> Exception:
    code = reply[0]
    if code == "refused":
        # A block stands between the two: the same plain refusal whoever blocked whom.
        return Forbidden(f"You cannot invite {invitee}.", code="invitation_refused")
    if code == "introduction_not_pending":
        return Conflict(f"The introduction is {reply[1] or 'gone'}, no longer pending.",
                        code="introduction_not_pending", status=reply[1] or None)
    if code == "already_connected":
        return Conflict(f"{inviter} and {invitee} are already connected.", code="already_connected")
    if code == "invitation_pending":
        return Conflict(f"An invitation to {invitee} is already pending.", code="invitation_pending",
                        invitation_id=reply[1])
    if code == "reinvite_cooldown":
        lifts = _limit_lifts(int(float(reply[1])), now)
        return Conflict(f"An invitation to {invitee} was withdrawn; it can be sent again from "
                        f"{lifts['lifts_at']} ({settings.reinvite_cooldown_days} days after the withdrawal).",
                        code="reinvite_cooldown", **lifts)
    if code == "invitation_limit_reached":
        lifts = _limit_lifts(int(float(reply[1])), now)
        return TooManyRequests(f"At most {settings.invitation_weekly_limit} invitations in any 7 days; "
                               f"the next one can be sent from {lifts['lifts_at']}.",
                               code="invitation_limit_reached", limit=settings.invitation_weekly_limit,
                               **lifts)
    if code == "connection_limit_reached":
        return _connection_limit(reply[1], settings)
    raise RuntimeError(f"unexpected reply from the send script: {reply!r}")


def _connection_limit(member: str, settings: Settings) -> Conflict:
    return Conflict(f"{member} has reached the limit of {settings.max_connections} connections; it lifts "
                    "when a connection is removed.", code="connection_limit_reached", member=member,
                    limit=settings.max_connections)


def _count_connections(pipe: redis.client.Pipeline, *members: str) -> None:
    """Queue on ``pipe`` each member's count of projected connections (for ``_fullness``)."""
    for member in members:
        pipe.zcard(keys.connections(member))


def _fullness(settings: Settings, counts: list[int]) -> list[str]:
    """For each count, ``"1"`` when it reached the maximum of connections."""
    return ["1" if count >= settings.max_connections else "0" for count in counts]


def _full(store: redis.Redis, settings: Settings, *members: str) -> list[str]:
    """For each member, ``"1"`` when their projected connections reached the maximum."""
    with store.pipeline(transaction=False) as pipe:
        _count_connections(pipe, *members)
        return _fullness(settings, pipe.execute())


def queue_pair_state(pipe: redis.client.Pipeline, inviter: str, invitee: str) -> None:
    """Queue the reads ``send`` makes before its script (``pair_state``: their replies): the
    pair's open invitation, and both members' connection counts."""
    pipe.hmget(keys.relationship(inviter, invitee), "open", "open_by")
    _count_connections(pipe, inviter, invitee)


def send(store: redis.Redis, outbox: Outbox, settings: Settings, inviter: str, invitee: str,
         message: str | None = None, introduction: tuple[str, str, dict] | None = None,
         pair_state: list | None = None) -> Invitation:
    """``inviter`` invites ``invitee``. When ``invitee`` had already invited ``inviter``, that
    invitation is accepted instead and returned (status ``accepted``): crossing invitations connect.

    A block between the two refuses (403 ``invitation_refused``). ``introduction`` is
    ``(id, introducer, forwarded event data)`` when an introducer forwards an introduction: the
    invitation names them, and the introduction is marked forwarded in the same step, only if
    it is still pending.

    The weekly cap is a place in the inviter's rolling log, taken first (their slot) and given
    back unless the pair's script creates the invitation. ``pair_state``: the replies of
    ``queue_pair_state`` when the caller read them already (a retry reads them again)."""
    if inviter == invitee:
        raise Invalid({"invitee": ["A member cannot invite themselves."]}, code="cannot_invite_self")
    message = message or None
    invitation_id = keys.new_id(inviter, invitee, uuid.uuid4().hex)
    tag = keys.pair_tag(inviter, invitee)
    log = keys.invitation_log(inviter)
    while True:
        now = now_ms()
        # The invitee's open invitation to the inviter, if any, read ahead so the script gets
        # its accepted event ready-made; the script refuses (retry) if it changed meanwhile.
        # Both members' connection counts come in the same round trip.
        if pair_state is None:
            with store.pipeline(transaction=False) as ahead:
                queue_pair_state(ahead, inviter, invitee)
                pair_state = ahead.execute()
        (open_id, open_by), *counts = pair_state
        pair_state = None
        inviter_full, invitee_full = _fullness(settings, counts)
        reverse = open_id if open_id and open_by == invitee else ""
        introduction_id, introducer, forwarded_data = introduction or ("", None, None)
        sent_args = outbox.xadd_args(new_event("connections", "invitation.sent", {
            "invitation_id": invitation_id, "inviter": inviter, "invitee": invitee, "message": message,
            "sent_at": rfc3339(now), "introduced_by": introducer}))
        accepted_args: list[str] = []
        if reverse:
            accepted_args = outbox.xadd_args(new_event("connections", "invitation.accepted", {
                "invitation_id": reverse, "inviter": invitee, "invitee": inviter, "at": rfc3339(now),
                "version": PENDING_VERSION}))
        forwarded_args: list[str] = []
        if introduction_id:
            forwarded_args = outbox.xadd_args(new_event("connections", "introduction.forwarded", {
                **forwarded_data, "invitation_id": reverse or invitation_id, "at": rfc3339(now)}))
        reservation = keys.RESERVE_INVITATION(store, keys={"log": log}, id=invitation_id, now=now,
                                              window_ms=WEEK_MS, limit=settings.invitation_weekly_limit)
        reserved = reservation[0] == "reserved"
        reply = None
        try:
            reply = keys.SEND(store, keys={
                "relationship": keys.relationship(inviter, invitee), "invitation": keys.invitation(invitation_id),
                "reverse": keys.invitation(reverse or invitation_id),
                "cooldown": keys.reinvite_cooldown(inviter, invitee),
                "introduction": keys.introduction(introduction_id) if introduction_id else keys.invitation(invitation_id),
                "outbox": outbox.key_for(tag), "records": keys.pair_records(inviter, invitee),
            }, inviter=inviter, invitee=invitee, id=invitation_id, now=now, message=message or "",
                reserved="1" if reserved else "0", lifts_at="" if reserved else reservation[1],
                inviter_full=inviter_full, invitee_full=invitee_full, expected_reverse=reverse,
                introduction_id=introduction_id, introducer=introducer or "", n=len(sent_args),
                m=len(accepted_args), events=[*sent_args, *accepted_args, *forwarded_args])
        finally:
            if reserved and (reply is None or reply[0] != "sent"):
                store.zrem(log, invitation_id)
        if reply[0] == "retry":
            continue
        if reply[0] in ("sent", "accepted"):  # the pair's record as the script left it: no read back
            flat = reply[2]
            projections.project(store, inviter, invitee, record=dict(zip(flat[::2], flat[1::2])))
        if reply[0] == "sent":
            return Invitation(invitation_id, inviter, invitee, message, "pending", now, None, introducer)
        if reply[0] == "accepted":
            return get(store, inviter, reply[1])
        raise _refusal(reply, inviter, invitee, now, settings)


def _decide(store: redis.Redis, member: str, invitation_id: str) -> Invitation:
    found = load(store, invitation_id)
    if found is None or member not in (found.inviter, found.invitee):
        raise _not_found()
    return found


def _decision_refused(reply: list, found: Invitation, member: str, settings: Settings) -> Exception:
    code = reply[0]
    if code == "not_found":
        return _not_found()
    if code == "not_invitee":
        return Forbidden("Only the invitee can accept or ignore an invitation.", code="not_invitee")
    if code == "not_inviter":
        return Forbidden("Only the inviter can withdraw an invitation.", code="not_inviter")
    if code == "invitation_not_pending":
        status = found.seen_by(member).status if reply[1] == "ignored" else reply[1]
        return Conflict(f"The invitation is {status}, no longer pending.", code="invitation_not_pending",
                        invitation_status=status)
    if code == "connection_limit_reached":
        return _connection_limit(reply[1], settings)
    raise RuntimeError(f"unexpected reply from an invitation script: {reply!r}")


def _decided_event(outbox: Outbox, name: str, found: Invitation, now: int) -> list[str]:
    data = {"invitation_id": found.id, "inviter": found.inviter, "invitee": found.invitee, "at": rfc3339(now)}
    if name == "invitation.accepted":
        data["version"] = PENDING_VERSION  # the pair's next, numbered by ACCEPT
    return outbox.xadd_args(new_event("connections", name, data))


def _pair_keys(outbox: Outbox, found: Invitation) -> dict:
    return {"relationship": keys.relationship(found.inviter, found.invitee), "invitation": keys.invitation(found.id),
            "outbox": outbox.key_for(keys.pair_tag(found.inviter, found.invitee))}


def accept(store: redis.Redis, outbox: Outbox, settings: Settings, member: str, invitation_id: str) -> Invitation:
    """The invitee accepts: the two become connected. The inviter gets 403, anyone else 404.

    The maximum of connections is checked against both members' projected counts, read just
    before the pair's script (docs/architecture.md: what concurrency allows)."""
    found = _decide(store, member, invitation_id)
    now = now_ms()
    inviter_full, invitee_full = _full(store, settings, found.inviter, found.invitee)
    reply = keys.ACCEPT(store, keys=_pair_keys(outbox, found), caller=member, now=now, inviter_full=inviter_full,
                        invitee_full=invitee_full, event=_decided_event(outbox, "invitation.accepted", found, now))
    if reply[0] != "accepted":
        raise _decision_refused(reply, found, member, settings)
    projections.project(store, found.inviter, found.invitee)
    return get(store, member, found.id)


def ignore(store: redis.Redis, outbox: Outbox, settings: Settings, member: str, invitation_id: str) -> Invitation:
    """The invitee ignores: it leaves their list; the inviter still sees it pending."""
    found = _decide(store, member, invitation_id)
    now = now_ms()
    reply = keys.IGNORE(store, keys=_pair_keys(outbox, found), caller=member, now=now,
                        event=_decided_event(outbox, "invitation.ignored", found, now))
    if reply[0] != "ignored":
        raise _decision_refused(reply, found, member, settings)
    projections.project(store, found.inviter, found.invitee)
    return get(store, member, found.id)


def withdraw(store: redis.Redis, outbox: Outbox, settings: Settings, member: str,
             invitation_id: str) -> Invitation:
    """The inviter withdraws; they may not invite the same member again for the cool-down."""
    found = _decide(store, member, invitation_id)
    now = now_ms()
    reply = keys.WITHDRAW(store, keys={**_pair_keys(outbox, found),
                                       "cooldown": keys.reinvite_cooldown(found.inviter, found.invitee)},
                          caller=member, now=now, cooldown_ms=settings.reinvite_cooldown_days * DAY_MS,
                          event=_decided_event(outbox, "invitation.withdrawn", found, now))
    if reply[0] != "withdrawn":
        raise _decision_refused(reply, found, member, settings)
    projections.project(store, found.inviter, found.invitee)
    return get(store, member, found.id)


def page(store: redis.Redis, member: str, direction: str, limit: int,
         cursor: str | None) -> tuple[list[Invitation], str | None]:
    """``member``'s pending invitations, received or sent, newest first."""
    index = keys.received(member) if direction == "received" else keys.sent(member)
    ids, next_cursor = zset_page(store, index, limit, cursor)
    with store.pipeline(transaction=False) as pipe:
        for invitation_id, _ in ids:
            pipe.hgetall(keys.invitation(invitation_id))
        found = [_from_hash(raw) for raw in pipe.execute()]
    return [inv.seen_by(member) for inv in found if inv is not None], next_cursor
