"""Every Redis key of the connections service, and the Lua scripts of its transitions.

Nothing else builds these keys. Every key starts with ``connections:`` and carries the shard tag
of its aggregate (``shared.slots``), so each script and transaction touches one hash slot and
the store can be a Redis Cluster:

- a **member pair** (``tag(pair(a, b))``) holds what is authoritative between the two: the
  ``relationship`` record (connected since when, the one open invitation between them, a block
  either way, a pending introduction, the pair's version), the invitations themselves, the
  introductions of the pair (requester → target), the re-invite cool-down. Every transition
  (send, accept, ignore, withdraw, remove, block, unblock, introduce, decline) is one script in
  the pair's slot that also appends its event to the outbox stream of that slot;
- a **member** (``tag(member)``) holds projections of the pair records they are in (their
  connections, sent and received invitations, open invitations either way, blocks either way,
  with the pair version each was projected from), and what is theirs alone: the weekly invitation
  log, settings, endorsements received, people-you-may-know. ``PROJECT`` applies a pair record
  to one member's side, only when its version is newer than the one projected.

Invitation and introduction ids carry their pair's shard in their last four hex digits, so an id
alone names its key.
"""
from __future__ import annotations

import functools
import re
from typing import Mapping

import redis

from shared.lua import LuaScript
from shared.settings import load_settings
from shared.slots import pair, shard_of, shard_tag

SERVICE = "connections"
_HEX_ID = re.compile(r"^[0-9a-f]{32}$")


@functools.cache
def shards() -> int:
    """The number of shards (``RAPPORT_SHARDS``), read once per process: it is fixed for the life
    of a deployment."""
    return load_settings().shards


def member_tag(member: str) -> str:
    return shard_tag(shard_of(member, shards()))


def pair_tag(a: str, b: str) -> str:
    return shard_tag(shard_of(pair(a, b), shards()))


def _m(kind: str, member: str) -> str:
    return f"{SERVICE}:{member_tag(member)}:{kind}:{member}"


# --- ids ----------------------------------------------------------------------------------

def new_id(a: str, b: str, random_hex: str) -> str:
    """An invitation's or introduction's id for the pair ``a``/``b``: 28 random hex digits and
    the pair's shard in the last four (shards are fewer than 65,536)."""
    return f"{random_hex[:28]}{shard_of(pair(a, b), shards()):04x}"


def id_tag(record_id: str) -> str | None:
    """The shard tag an id names, or None for an id this service never minted."""
    if not _HEX_ID.match(record_id or ""):
        return None
    shard = int(record_id[-4:], 16)
    return shard_tag(shard) if shard < shards() else None


# --- the pair's slot (authoritative) ----------------------------------------------------------

def relationship(a: str, b: str) -> str:
    """Hash, the pair's authoritative record (either order): ``version`` (the pair version, one
    per change, numbered by the script that makes it), ``connected_at`` (ms, while connected),
    ``open``/``open_by``/``open_at``/``open_status`` (the one open invitation between the two:
    pending or ignored), ``block:<member>`` (ms, a block by that member), ``intro:<requester>``
    (the id of the requester's pending introduction to the other)."""
    p = pair(a, b)
    return f"{SERVICE}:{pair_tag(a, b)}:relationship:{p}"


def invitation(invitation_id: str) -> str:
    """Hash: id, inviter, invitee, message, status, created_at (ms), decided_at (ms), introduced_by."""
    return f"{SERVICE}:{id_tag(invitation_id) or '{unknown}'}:invitation:{invitation_id}"


def introduction(introduction_id: str) -> str:
    """Hash: id, requester, target, via, note, status (pending | forwarded | declined),
    created_at (ms), decided_at (ms), invitation_id (once forwarded)."""
    return f"{SERVICE}:{id_tag(introduction_id) or '{unknown}'}:introduction:{introduction_id}"


def pair_records(a: str, b: str) -> str:
    """Set (footprint, the pair's slot): the ids of every invitation of the pair (either order),
    added by SEND with the invitation, so a closed account's invitations are found from the
    members it has a pair record with (``projected``) without a SCAN."""
    return f"{SERVICE}:{pair_tag(a, b)}:pair-records:{pair(a, b)}"


def introductions(member: str) -> str:
    """Set (footprint): the ids of the introductions ``member`` is the requester, target or
    go-between of, added on each of the three before INTRODUCE writes the introduction."""
    return _m("introductions", member)


def endorsed(endorser: str) -> str:
    """Set (footprint): ``<endorsee> <skill key>`` for each endorsement ``endorser`` gave, added
    before ENDORSE (endorsements are not withdrawn: an entry goes with the endorsement's erasure)."""
    return _m("endorsed", endorser)


def reinvite_cooldown(inviter: str, invitee: str) -> str:
    """String with a TTL: until when (ms) ``inviter`` may not invite ``invitee`` again."""
    return f"{SERVICE}:{pair_tag(inviter, invitee)}:reinvite-cooldown:{inviter}:{invitee}"


# --- the member's slot ------------------------------------------------------------------------

def connections(member: str) -> str:
    """Sorted set (projection): ``member``'s connections, scored by when they connected (ms)."""
    return _m("connections", member)


def received(member: str) -> str:
    """Sorted set (projection): ids of the pending invitations ``member`` received, by when sent."""
    return _m("invitations-received", member)


def sent(member: str) -> str:
    """Sorted set (projection): ids of ``member``'s open invitations (pending, or ignored: the
    inviter cannot tell), scored by when sent."""
    return _m("invitations-sent", member)


def open_invitations(member: str) -> str:
    """Hash (projection): other member → id of the open invitation between them, either way."""
    return _m("invitations-open", member)


def blocks(member: str) -> str:
    """Sorted set (projection): the members ``member`` has blocked, scored by when (ms)."""
    return _m("blocks", member)


def blocked_by(member: str) -> str:
    """Set (projection): the members who have blocked ``member``."""
    return _m("blocked-by", member)


def projected(member: str) -> str:
    """Hash: other member → the pair version ``member``'s projections were last brought to."""
    return _m("projected", member)


def invitation_log(inviter: str) -> str:
    """Sorted set: every invitation ``inviter`` sent (or reserved) within the rolling window."""
    return _m("invitations-log", inviter)


def member_settings(member: str) -> str:
    """Hash: ``member``'s connection settings (connections_visibility)."""
    return _m("settings", member)


def endorsement_skills(endorsee: str) -> str:
    """Sorted set: ``endorsee``'s endorsed skills (their folded key), scored by how many endorsed each."""
    return _m("endorsement-skills", endorsee)


def endorsement_names(endorsee: str) -> str:
    """Hash: folded skill key → the skill as first written."""
    return _m("endorsement-skill-names", endorsee)


def endorsers(endorsee: str, skill_key: str) -> str:
    """Sorted set: who endorsed ``endorsee`` for the skill, scored by when (ms)."""
    return f"{SERVICE}:{member_tag(endorsee)}:endorsers:{endorsee}:{skill_key}"


def suggestions(member: str) -> str:
    """Sorted set: ``member``'s precomputed people-you-may-know, scored by mutual connections.

    Kept ``KEEP_MS`` after its last computation (an idle member's list does not stay forever)."""
    return _m("suggestions", member)


def suggestions_state(member: str) -> str:
    """Hash, same lifetime: ``basis`` (the state of ``member``'s own relationships the list was
    computed from: connections' count and newest time, and blocks either way when there are
    any), ``computed_at`` (ms) and ``stale`` (set when a second-hand change may have moved it)."""
    return _m("suggestions-state", member)


def suggestions_due() -> str:
    """Sorted set: members whose list a read found older than the refresh bound, scored by when
    queued; the connections worker recomputes them (docs/suggestions.md). One key of its own."""
    return f"{SERVICE}:suggestions-due"


# --- bulk loading -------------------------------------------------------------------------

def add_connection(pipe: redis.client.Pipeline, a: str, b: str, at_ms: int) -> None:
    """Queue a connection between ``a`` and ``b`` on ``pipe`` (bulk loading: no invitation, no
    event): the pair's record and both members' projections, at version 1."""
    pipe.hset(relationship(a, b), mapping={"connected_at": at_ms, "version": 1})
    load_connections(pipe, a, {b: at_ms})
    load_connections(pipe, b, {a: at_ms})


def load_connections(pipe: redis.client.Pipeline, member: str, others: Mapping[str, int]) -> None:
    """Queue ``member``'s side of many connections (other → connected_at ms) on ``pipe``, with the
    pair records (bulk loading of a generated or migrated graph: no invitation, no event; the
    caller loads the other direction too, with the same time)."""
    if others:
        pipe.zadd(connections(member), others)
        pipe.hset(projected(member), mapping={other: 1 for other in others})
        for other, at in others.items():
            if member < other:
                pipe.hset(relationship(member, other), mapping={"connected_at": at, "version": 1})


# --- scripts: the pair's slot ------------------------------------------------------------------
# Each changes the relationship record, bumps its version and appends its event to the outbox
# stream of the pair's slot. Reading a member's count (the connection limit) or the weekly log
# (the invitation cap) is done before, in their own slots; the script gets the outcome as an
# argument (see docs/architecture.md for what that allows under concurrency).

_PAIR = """
-- An event's field/value list with the placeholder version replaced by ``version`` (as
-- shared.events.envelope.STAMP_VERSION does for ARGV ranges).
local function stamp(fields, version)
  local out = {}
  for i = 1, #fields do out[i] = fields[i] end
  for i = 1, #out - 1, 2 do
    if out[i] == 'value' then
      out[i + 1] = (string.gsub(out[i + 1], '"version":0([,}])', '"version":' .. version .. '%1', 1))
    end
  end
  return out
end
local function bump() return redis.call('HINCRBY', K.relationship, 'version', 1) end
local function close_open()
  redis.call('HDEL', K.relationship, 'open', 'open_by', 'open_at', 'open_status')
end
"""

SEND = LuaScript("send", keys=("relationship", "invitation", "reverse", "cooldown", "introduction", "outbox", "records"),
                 args=("inviter", "invitee", "id", "now", "message", "reserved", "lifts_at", "inviter_full",
                       "invitee_full", "expected_reverse", "introduction_id", "introducer", "n", "m", "*events"),
                 source=_PAIR + """
-- events: n invitation.sent args, m invitation.accepted args (when a reverse one is expected),
-- then the introduction.forwarded args (when an introduction is forwarded).
-- 'sent' and 'accepted' come with the pair's record as written (flat), for the projections.
local n, m = tonumber(A.n), tonumber(A.m)
local rel = K.relationship
-- A block either way refuses, and says nothing about who blocked whom.
if redis.call('HEXISTS', rel, 'block:' .. A.inviter) == 1 or redis.call('HEXISTS', rel, 'block:' .. A.invitee) == 1 then
  return {'refused'}
end
local intro = A.introduction_id
if intro ~= '' then
  local status = redis.call('HGET', K.introduction, 'status')
  if status ~= 'pending' then return {'introduction_not_pending', status or ''} end
end
local function forwarded(invitation_id)
  if intro == '' then return end
  redis.call('HSET', K.introduction, 'status', 'forwarded', 'decided_at', A.now, 'invitation_id', invitation_id)
  if redis.call('HGET', rel, 'intro:' .. A.inviter) == intro then redis.call('HDEL', rel, 'intro:' .. A.inviter) end
  redis.call('XADD', K.outbox, '*', unpack(A.events, n + m + 1))
end
if redis.call('HEXISTS', rel, 'connected_at') == 1 then return {'already_connected'} end
local open, by = unpack(redis.call('HMGET', rel, 'open', 'open_by'))
if open and by == A.inviter then return {'invitation_pending', open} end
local reverse = (open and by == A.invitee) and open or ''
if reverse ~= A.expected_reverse then return {'retry'} end
if reverse ~= '' then
  -- Crossing invitations: the invitee already asked, so this is a yes.
  if A.inviter_full == '1' then return {'connection_limit_reached', A.inviter} end
  if A.invitee_full == '1' then return {'connection_limit_reached', A.invitee} end
  redis.call('HSET', K.reverse, 'status', 'accepted', 'decided_at', A.now)
  close_open()
  redis.call('HSET', rel, 'connected_at', A.now)
  local accepted = {}
  for i = n + 1, n + m do accepted[#accepted + 1] = A.events[i] end
  redis.call('XADD', K.outbox, '*', unpack(stamp(accepted, bump())))
  forwarded(reverse)
  return {'accepted', reverse, redis.call('HGETALL', rel)}
end
local until_ms = redis.call('GET', K.cooldown)
if until_ms then return {'reinvite_cooldown', until_ms} end
if A.reserved ~= '1' then return {'invitation_limit_reached', A.lifts_at} end
if A.inviter_full == '1' then return {'connection_limit_reached', A.inviter} end
redis.call('HSET', K.invitation, 'id', A.id, 'inviter', A.inviter, 'invitee', A.invitee, 'message', A.message,
           'status', 'pending', 'created_at', A.now, 'introduced_by', A.introducer)
redis.call('SADD', K.records, A.id)
redis.call('HSET', rel, 'open', A.id, 'open_by', A.inviter, 'open_at', A.now, 'open_status', 'pending')
bump()
redis.call('XADD', K.outbox, '*', unpack(A.events, 1, n))
forwarded(A.id)
return {'sent', A.id, redis.call('HGETALL', rel)}
""")

_DECISION = """
local inv = redis.call('HMGET', K.invitation, 'id', 'inviter', 'invitee', 'status')
if not inv[1] then return {'not_found'} end
"""

ACCEPT = LuaScript("accept", keys=("relationship", "invitation", "outbox"),
                   args=("caller", "now", "inviter_full", "invitee_full", "*event"), source=_PAIR + _DECISION + """
if A.caller ~= inv[3] then
  if A.caller == inv[2] then return {'not_invitee'} end
  return {'not_found'}
end
if inv[4] ~= 'pending' then return {'invitation_not_pending', inv[4]} end
if A.inviter_full == '1' then return {'connection_limit_reached', inv[2]} end
if A.invitee_full == '1' then return {'connection_limit_reached', inv[3]} end
redis.call('HSET', K.invitation, 'status', 'accepted', 'decided_at', A.now)
if redis.call('HGET', K.relationship, 'open') == inv[1] then close_open() end
redis.call('HSET', K.relationship, 'connected_at', A.now)
redis.call('XADD', K.outbox, '*', unpack(stamp(A.event, bump())))
return {'accepted'}
""")

IGNORE = LuaScript("ignore", keys=("relationship", "invitation", "outbox"), args=("caller", "now", "*event"),
                   source=_PAIR + _DECISION + """
if A.caller ~= inv[3] then
  if A.caller == inv[2] then return {'not_invitee'} end
  return {'not_found'}
end
if inv[4] ~= 'pending' then return {'invitation_not_pending', inv[4]} end
-- The inviter's side stays as it is: to them it still looks pending.
redis.call('HSET', K.invitation, 'status', 'ignored', 'decided_at', A.now)
if redis.call('HGET', K.relationship, 'open') == inv[1] then
  redis.call('HSET', K.relationship, 'open_status', 'ignored')
end
bump()
redis.call('XADD', K.outbox, '*', unpack(A.event))
return {'ignored'}
""")

WITHDRAW = LuaScript("withdraw", keys=("relationship", "invitation", "cooldown", "outbox"),
                     args=("caller", "now", "cooldown_ms", "*event"), source=_PAIR + _DECISION + """
if A.caller ~= inv[2] then
  if A.caller == inv[3] then return {'not_inviter'} end
  return {'not_found'}
end
-- An ignored invitation looks pending to its inviter, who may withdraw it.
if inv[4] ~= 'pending' and inv[4] ~= 'ignored' then return {'invitation_not_pending', inv[4]} end
redis.call('HSET', K.invitation, 'status', 'withdrawn', 'decided_at', A.now)
if redis.call('HGET', K.relationship, 'open') == inv[1] then close_open() end
local cooldown = tonumber(A.cooldown_ms)
if cooldown > 0 then
  redis.call('SET', K.cooldown, tostring(tonumber(A.now) + cooldown), 'PX', cooldown)
end
bump()
redis.call('XADD', K.outbox, '*', unpack(A.event))
return {'withdrawn'}
""")

REMOVE = LuaScript("remove", keys=("relationship", "outbox"), args=("remover", "other", "*event"), source=_PAIR + """
if redis.call('HDEL', K.relationship, 'connected_at') == 0 then return {'not_connected'} end
redis.call('XADD', K.outbox, '*', unpack(stamp(A.event, bump())))
return {'removed'}
""")

# A block: the connection goes, the invitation between the two goes (the blocker's own is
# withdrawn; the blocked member's is ignored, which is silent: to them it still looks pending),
# and the block is recorded. The open invitation is read ahead so its event comes ready-made;
# the script refuses (retry) if it changed.
BLOCK = LuaScript("block", keys=("relationship", "invitation", "outbox"),
                  args=("blocker", "blocked", "now", "expected_open", "n1", "n2", "*events"), source=_PAIR + """
-- events: n1 connection.removed args, n2 block.added args, then the open invitation's
-- invitation.withdrawn (the blocker's) or invitation.ignored (the blocked member's) args.
local rel = K.relationship
if redis.call('HEXISTS', rel, 'block:' .. A.blocker) == 1 then return {'exists'} end
local open, by, status = unpack(redis.call('HMGET', rel, 'open', 'open_by', 'open_status'))
if (open or '') ~= A.expected_open then return {'retry'} end
local n1, n2 = tonumber(A.n1), tonumber(A.n2)
local function part(first, last)
  local out = {}
  for i = first, last do out[#out + 1] = A.events[i] end
  return out
end
redis.call('HSET', rel, 'block:' .. A.blocker, A.now)
if redis.call('HDEL', rel, 'connected_at') == 1 then
  redis.call('XADD', K.outbox, '*', unpack(stamp(part(1, n1), bump())))
end
if open then
  if by == A.blocker then
    redis.call('HSET', K.invitation, 'status', 'withdrawn', 'decided_at', A.now)
    close_open()
    redis.call('XADD', K.outbox, '*', unpack(A.events, n1 + n2 + 1))
  elseif status == 'pending' then
    redis.call('HSET', K.invitation, 'status', 'ignored', 'decided_at', A.now)
    redis.call('HSET', rel, 'open_status', 'ignored')
    redis.call('XADD', K.outbox, '*', unpack(A.events, n1 + n2 + 1))
  end
end
redis.call('XADD', K.outbox, '*', unpack(stamp(part(n1 + 1, n1 + n2), bump())))
return {'blocked'}
""")

UNBLOCK = LuaScript("unblock", keys=("relationship", "outbox"), args=("blocker", "*event"), source=_PAIR + """
if redis.call('HDEL', K.relationship, 'block:' .. A.blocker) == 0 then return {'not_blocked'} end
redis.call('XADD', K.outbox, '*', unpack(stamp(A.event, bump())))
return {'unblocked'}
""")

# The requester's introduction to the target lives in their pair's slot. Whether the introducer
# is connected to both is read before (``mutual``): those are two other pairs.
INTRODUCE = LuaScript("introduce", keys=("relationship", "introduction", "outbox"),
                      args=("requester", "target", "via", "id", "now", "note", "mutual", "*event"), source=_PAIR + """
local rel = K.relationship
if redis.call('HEXISTS', rel, 'block:' .. A.requester) == 1 or redis.call('HEXISTS', rel, 'block:' .. A.target) == 1 then
  return {'refused'}
end
if A.mutual ~= '1' then return {'not_mutual'} end
if redis.call('HEXISTS', rel, 'connected_at') == 1 then return {'already_connected'} end
local pending = redis.call('HGET', rel, 'open')
if pending then return {'invitation_pending', pending} end
local open = redis.call('HGET', rel, 'intro:' .. A.requester)
if open then return {'introduction_pending', open} end
redis.call('HSET', K.introduction, 'id', A.id, 'requester', A.requester, 'target', A.target, 'via', A.via,
           'note', A.note, 'status', 'pending', 'created_at', A.now)
redis.call('HSET', rel, 'intro:' .. A.requester, A.id)
redis.call('XADD', K.outbox, '*', unpack(A.event))
return {'requested'}
""")

DECLINE_INTRODUCTION = LuaScript("decline_introduction", keys=("relationship", "introduction", "outbox"),
                                 args=("caller", "now", "*event"), source="""
local intro = redis.call('HMGET', K.introduction, 'id', 'requester', 'target', 'via', 'status')
if not intro[1] then return {'not_found'} end
if A.caller ~= intro[4] then return {'not_found'} end
if intro[5] ~= 'pending' then return {'introduction_not_pending', intro[5]} end
redis.call('HSET', K.introduction, 'status', 'declined', 'decided_at', A.now)
if redis.call('HGET', K.relationship, 'intro:' .. intro[2]) == intro[1] then
  redis.call('HDEL', K.relationship, 'intro:' .. intro[2])
end
redis.call('XADD', K.outbox, '*', unpack(A.event))
return {'declined'}
""")

# --- scripts: the member's slot -----------------------------------------------------------

# The weekly invitation cap, in the inviter's slot: a place in the rolling window is taken
# before the pair's SEND runs, and given back (ZREM) when SEND does not create an invitation.
RESERVE_INVITATION = LuaScript("reserve_invitation", keys=("log",), args=("id", "now", "window_ms", "limit"), source="""
local now, window = tonumber(A.now), tonumber(A.window_ms)
redis.call('ZREMRANGEBYSCORE', K.log, '-inf', '(' .. (now - window))
if redis.call('ZCARD', K.log) >= tonumber(A.limit) then
  local oldest = redis.call('ZRANGE', K.log, 0, 0, 'WITHSCORES')
  return {'invitation_limit_reached', tostring(tonumber(oldest[2]) + window)}
end
redis.call('ZADD', K.log, now, A.id)
redis.call('PEXPIRE', K.log, window)
return {'reserved'}
""")

# One member's side of a pair record, brought to the record's version: idempotent, and a
# version not newer than the one projected changes nothing (a late or repeated copy).
PROJECT = LuaScript("project", keys=("connections", "sent", "received", "open", "blocks", "blocked_by", "projected"),
                    args=("member", "other", "version", "connected_at", "open_id", "open_by", "open_at",
                          "open_status", "blocks_at", "blocked"), source="""
local last = tonumber(redis.call('HGET', K.projected, A.other) or '0')
if tonumber(A.version) <= last then return {'stale', last} end
redis.call('HSET', K.projected, A.other, A.version)
if A.connected_at ~= '' then
  redis.call('ZADD', K.connections, A.connected_at, A.other)
else
  redis.call('ZREM', K.connections, A.other)
end
local old = redis.call('HGET', K.open, A.other)
if old and old ~= A.open_id then
  redis.call('ZREM', K.sent, old)
  redis.call('ZREM', K.received, old)
end
if A.open_id ~= '' then
  redis.call('HSET', K.open, A.other, A.open_id)
  if A.open_by == A.member then
    redis.call('ZADD', K.sent, A.open_at, A.open_id)
  elseif A.open_status == 'pending' then
    redis.call('ZADD', K.received, A.open_at, A.open_id)
  else
    redis.call('ZREM', K.received, A.open_id)
  end
else
  redis.call('HDEL', K.open, A.other)
end
if A.blocks_at ~= '' then
  redis.call('ZADD', K.blocks, A.blocks_at, A.other)
else
  redis.call('ZREM', K.blocks, A.other)
end
if A.blocked == '1' then
  redis.call('SADD', K.blocked_by, A.other)
else
  redis.call('SREM', K.blocked_by, A.other)
end
return {'projected', A.version}
""")

ENDORSE = LuaScript("endorse", keys=("connections", "endorsers", "skills", "names", "outbox"),
                    args=("endorser", "skill_key", "skill", "now", "*event"), source="""
-- In the endorsee's slot: their projected connections say whether the endorser is one.
if not redis.call('ZSCORE', K.connections, A.endorser) then return {'not_connected'} end
local at = redis.call('ZSCORE', K.endorsers, A.endorser)
if at then return {'exists', at, redis.call('HGET', K.names, A.skill_key) or A.skill} end
redis.call('ZADD', K.endorsers, A.now, A.endorser)
redis.call('ZINCRBY', K.skills, 1, A.skill_key)
redis.call('HSETNX', K.names, A.skill_key, A.skill)
redis.call('XADD', K.outbox, '*', unpack(A.event))
return {'added', A.now, redis.call('HGET', K.names, A.skill_key)}
""")

# In the endorsee's slot: a closed account's endorsement of one skill goes. The count drops
# only when the endorser was still there (ZREM's reply), so a retried erasure drops it once;
# a skill nobody endorses any more goes with its name.
ERASE_ENDORSEMENT = LuaScript("erase_endorsement", keys=("endorsers", "skills", "names"),
                              args=("endorser", "skill_key"), source="""
if redis.call('ZREM', K.endorsers, A.endorser) == 0 then return 0 end
if tonumber(redis.call('ZINCRBY', K.skills, -1, A.skill_key)) <= 0 then
  redis.call('ZREM', K.skills, A.skill_key)
  redis.call('HDEL', K.names, A.skill_key)
end
return 1
""")

# Every script of the service, for the tests that check the convention.
SCRIPTS = (SEND, ACCEPT, IGNORE, WITHDRAW, REMOVE, BLOCK, UNBLOCK, INTRODUCE, DECLINE_INTRODUCTION,
           RESERVE_INVITATION, PROJECT, ENDORSE, ERASE_ENDORSEMENT)
