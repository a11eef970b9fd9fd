"""Every Redis key of the connections service, and the Lua scripts of its transitions.

Nothing else builds these keys. Member ids sit in hash tags (``{ada}``) so a member's keys
share a cluster slot. The transitions below touch two members' keys in one script: the
store is a single Redis primary (ARCHITECTURE.md: only the timeline cache is a cluster),
which is what lets an accept, a withdrawal or a crossing invitation be one atomic step.

Indexes later issues (suggestions, introductions, blocks) can build on:
- ``connections(m)``: who ``m`` is connected to, scored by when (ms);
- ``invitation(id)``: the invitation itself (a hash);
- ``open_invitations(inviter)``: the member-pair index, invitee → id of the inviter's
  open (pending or ignored) invitation to them. At most one per pair and direction.

Growing the network adds blocks (both directions indexed, so either side checks in O(1)),
introductions, endorsements and the precomputed people-you-may-know list of each member.
"""
from __future__ import annotations

from typing import Mapping

import redis

from shared.events.envelope import STAMP_VERSION

CONNECTIONS_PREFIX, CONNECTIONS_SUFFIX = "connections:{", "}"
INVITATION_PREFIX, INVITATION_SUFFIX = "invitation:{", "}"
OPEN_PREFIX, OPEN_SUFFIX = "invitations-open:{", "}"


def connections(member: str) -> str:
    """Sorted set: ``member``'s connections, scored by when they connected (ms)."""
    return f"{CONNECTIONS_PREFIX}{member}{CONNECTIONS_SUFFIX}"


def invitation(invitation_id: str) -> str:
    """Hash: id, inviter, invitee, message, status, created_at (ms), decided_at (ms)."""
    return f"{INVITATION_PREFIX}{invitation_id}{INVITATION_SUFFIX}"


def received(member: str) -> str:
    """Sorted set: ids of the pending invitations ``member`` received, scored by when sent."""
    return f"invitations-received:{{{member}}}"


def sent(member: str) -> str:
    """Sorted set: ids of ``member``'s open invitations (pending, or ignored: the inviter
    cannot tell), scored by when sent."""
    return f"invitations-sent:{{{member}}}"


def open_invitations(inviter: str) -> str:
    """Hash: invitee → id of ``inviter``'s open invitation to them (the member-pair index)."""
    return f"{OPEN_PREFIX}{inviter}{OPEN_SUFFIX}"


def invitation_log(inviter: str) -> str:
    """Sorted set: every invitation ``inviter`` sent within the rolling window, scored by when."""
    return f"invitations-log:{{{inviter}}}"


def reinvite_cooldown(inviter: str, invitee: str) -> str:
    """String with a TTL: until when (ms) ``inviter`` may not invite ``invitee`` again."""
    return f"reinvite-cooldown:{{{inviter}}}:{invitee}"


def pair_version(a: str, b: str) -> str:
    """Counter: the version of the last change between ``a`` and ``b`` (either order): a
    connection, its removal, a block or its lifting. Each is numbered by its script, with
    the change and its event, so consumers order the pair's changes by it, not by a clock."""
    first, second = sorted((a, b))
    return f"pair-version:{{{first}|{second}}}"


def member_settings(member: str) -> str:
    """Hash: ``member``'s connection settings (connections_visibility)."""
    return f"connection-settings:{{{member}}}"


BLOCKS_PREFIX, BLOCKS_SUFFIX = "blocks:{", "}"


def blocks(member: str) -> str:
    """Sorted set: the members ``member`` has blocked, scored by when (ms)."""
    return f"{BLOCKS_PREFIX}{member}{BLOCKS_SUFFIX}"


def blocked_by(member: str) -> str:
    """Set: the members who have blocked ``member`` (the reverse index of ``blocks``)."""
    return f"blocked-by:{{{member}}}"


def introduction(introduction_id: str) -> str:
    """Hash: id, requester, target, via, note, status (pending | forwarded | declined),
    created_at (ms), decided_at (ms), invitation_id (once forwarded)."""
    return f"introduction:{{{introduction_id}}}"


def open_introductions(requester: str) -> str:
    """Hash: target → id of ``requester``'s pending introduction to them (one at a time)."""
    return f"introductions-open:{{{requester}}}"


def endorsement_skills(endorsee: str) -> str:
    """Sorted set: ``endorsee``'s endorsed skills (their folded key), scored by how many endorsed each."""
    return f"endorsement-skills:{{{endorsee}}}"


def endorsement_names(endorsee: str) -> str:
    """Hash: folded skill key → the skill as first written."""
    return f"endorsement-skill-names:{{{endorsee}}}"


def endorsers(endorsee: str, skill_key: str) -> str:
    """Sorted set: who endorsed ``endorsee`` for the skill, scored by when (ms)."""
    return f"endorsers:{{{endorsee}}}:{skill_key}"


def suggestions(member: str) -> str:
    """Sorted set: ``member``'s precomputed people-you-may-know, scored by mutual connections.

    Kept ``KEEP_MS`` after its last computation (an idle member's list does not stay forever)."""
    return f"suggestions:{{{member}}}"


def suggestions_state(member: str) -> str:
    """Hash, same lifetime: ``basis`` (the state of ``member``'s own relationships the list was
    computed from: connections' count and newest time, and blocks either way when there are
    any), ``computed_at`` (ms) and ``stale`` (set when a second-hand change may have moved it)."""
    return f"suggestions-state:{{{member}}}"


def suggestions_due() -> str:
    """Sorted set: members whose list a read found older than the refresh bound, scored by when
    queued; the connections worker recomputes them (docs/suggestions.md)."""
    return "suggestions-due"


def add_connection(pipe: redis.client.Pipeline, a: str, b: str, at_ms: int) -> None:
    """Queue a connection between ``a`` and ``b`` on ``pipe`` (bulk loading: no invitation, no event)."""
    pipe.zadd(connections(a), {b: at_ms})
    pipe.zadd(connections(b), {a: at_ms})


def load_connections(pipe: redis.client.Pipeline, member: str, others: Mapping[str, int]) -> None:
    """Queue ``member``'s side of many connections (other → connected_at ms) on ``pipe``.

    Bulk loading of a generated or migrated graph: no invitation, no event, and the caller
    loads the other direction too, with the same time.
    """
    if others:
        pipe.zadd(connections(member), others)


class Lua:
    """A Lua script run by SHA, loaded again when the server forgot it."""

    def __init__(self, source: str):
        self.source = source
        self._sha: str | None = None

    def __call__(self, client: redis.Redis, keys: list[str], args: list) -> list:
        if self._sha is None:
            self._sha = client.script_load(self.source)
        try:
            return client.evalsha(self._sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self._sha = client.script_load(self.source)
            return client.evalsha(self._sha, len(keys), *keys, *args)


# Making two members connected: the invitation's state, both adjacency sets, the indexes.
_CONNECT = """
local function connect(inv_key, id, inviter, invitee, now, conn_inviter, conn_invitee,
                       open_inviter, received_invitee, sent_inviter)
  redis.call('HSET', inv_key, 'status', 'accepted', 'decided_at', now)
  redis.call('ZADD', conn_inviter, now, invitee)
  redis.call('ZADD', conn_invitee, now, inviter)
  if redis.call('HGET', open_inviter, invitee) == id then
    redis.call('HDEL', open_inviter, invitee)
  end
  redis.call('ZREM', received_invitee, id)
  redis.call('ZREM', sent_inviter, id)
end
local function full(conn_key, max)
  return redis.call('ZCARD', conn_key) >= max
end
"""

SEND = Lua(STAMP_VERSION + _CONNECT + """
-- KEYS: 1 conn(inviter) 2 conn(invitee) 3 open(inviter) 4 open(invitee) 5 invitation(new)
--       6 received(invitee) 7 sent(inviter) 8 log(inviter) 9 cooldown(inviter,invitee)
--       10 outbox 11 invitation(reverse) 12 received(inviter) 13 sent(invitee)
--       14 blocks(inviter) 15 blocks(invitee) 16 introduction (or any key) 17 open-introductions(inviter)
--       18 pair-version(inviter, invitee)
-- ARGV: 1 inviter 2 invitee 3 new id 4 now 5 message 6 window ms 7 weekly limit
--       8 max connections 9 expected reverse id ('' = none) 10 n 11 m
--       12 introduction id ('' = a plain invitation) 13 introducer,
--       then n sent-event args, m accepted-event args (when a reverse id is expected),
--       then the introduction.forwarded args (when an introduction is forwarded)
local inviter, invitee, id, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local max = tonumber(ARGV[8])
local n, m = tonumber(ARGV[10]), tonumber(ARGV[11])
local intro = ARGV[12]
-- A block either way refuses, and says nothing about who blocked whom.
if redis.call('ZSCORE', KEYS[14], invitee) or redis.call('ZSCORE', KEYS[15], inviter) then
  return {'refused'}
end
if intro ~= '' then
  local status = redis.call('HGET', KEYS[16], 'status')
  if status ~= 'pending' then return {'introduction_not_pending', status or ''} end
end
local function forwarded(invitation_id)
  if intro == '' then return end
  redis.call('HSET', KEYS[16], 'status', 'forwarded', 'decided_at', now, 'invitation_id', invitation_id)
  if redis.call('HGET', KEYS[17], invitee) == intro then redis.call('HDEL', KEYS[17], invitee) end
  redis.call('XADD', KEYS[10], '*', unpack(ARGV, 14 + n + m))
end
if redis.call('ZSCORE', KEYS[1], invitee) then return {'already_connected'} end
local mine = redis.call('HGET', KEYS[3], invitee)
if mine then return {'invitation_pending', mine} end
local reverse = redis.call('HGET', KEYS[4], inviter) or ''
if reverse ~= ARGV[9] then return {'retry'} end
if reverse ~= '' then
  -- Crossing invitations: the invitee already asked, so this is a yes.
  if full(KEYS[1], max) then return {'connection_limit_reached', inviter} end
  if full(KEYS[2], max) then return {'connection_limit_reached', invitee} end
  connect(KEYS[11], reverse, invitee, inviter, now, KEYS[2], KEYS[1], KEYS[4], KEYS[12], KEYS[13])
  redis.call('XADD', KEYS[10], '*', unpack(stamped(14 + n, 13 + n + m, redis.call('INCR', KEYS[18]))))
  forwarded(reverse)
  return {'accepted', reverse}
end
local until_ms = redis.call('GET', KEYS[9])
if until_ms then return {'reinvite_cooldown', until_ms} end
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', '(' .. (now - tonumber(ARGV[6])))
if redis.call('ZCARD', KEYS[8]) >= tonumber(ARGV[7]) then
  local oldest = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
  return {'invitation_limit_reached', tostring(tonumber(oldest[2]) + tonumber(ARGV[6]))}
end
if full(KEYS[1], max) then return {'connection_limit_reached', inviter} end
redis.call('HSET', KEYS[5], 'id', id, 'inviter', inviter, 'invitee', invitee, 'message', ARGV[5],
           'status', 'pending', 'created_at', now, 'introduced_by', ARGV[13])
redis.call('ZADD', KEYS[6], now, id)
redis.call('ZADD', KEYS[7], now, id)
redis.call('HSET', KEYS[3], invitee, id)
redis.call('ZADD', KEYS[8], now, id)
redis.call('PEXPIRE', KEYS[8], ARGV[6])
redis.call('XADD', KEYS[10], '*', unpack(ARGV, 14, 13 + n))
forwarded(id)
return {'sent', id}
""")

ACCEPT = Lua(STAMP_VERSION + _CONNECT + """
-- KEYS: 1 invitation 2 conn(inviter) 3 conn(invitee) 4 open(inviter) 5 received(invitee)
--       6 sent(inviter) 7 outbox 8 pair-version(inviter, invitee)
-- ARGV: 1 caller 2 now 3 max connections, then the event args
local inv = redis.call('HMGET', KEYS[1], 'id', 'inviter', 'invitee', 'status')
if not inv[1] then return {'not_found'} end
if ARGV[1] ~= inv[3] then
  if ARGV[1] == inv[2] then return {'not_invitee'} end
  return {'not_found'}
end
if inv[4] ~= 'pending' then return {'invitation_not_pending', inv[4]} end
local max = tonumber(ARGV[3])
if full(KEYS[2], max) then return {'connection_limit_reached', inv[2]} end
if full(KEYS[3], max) then return {'connection_limit_reached', inv[3]} end
connect(KEYS[1], inv[1], inv[2], inv[3], ARGV[2], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('XADD', KEYS[7], '*', unpack(stamped(4, #ARGV, redis.call('INCR', KEYS[8]))))
return {'accepted'}
""")

IGNORE = Lua("""
-- KEYS: 1 invitation 2 received(invitee) 3 outbox    ARGV: 1 caller 2 now, then the event args
local inv = redis.call('HMGET', KEYS[1], 'id', 'inviter', 'invitee', 'status')
if not inv[1] then return {'not_found'} end
if ARGV[1] ~= inv[3] then
  if ARGV[1] == inv[2] then return {'not_invitee'} end
  return {'not_found'}
end
if inv[4] ~= 'pending' then return {'invitation_not_pending', inv[4]} end
-- The inviter's indexes stay as they are: to them it still looks pending.
redis.call('HSET', KEYS[1], 'status', 'ignored', 'decided_at', ARGV[2])
redis.call('ZREM', KEYS[2], inv[1])
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 3))
return {'ignored'}
""")

WITHDRAW = Lua("""
-- KEYS: 1 invitation 2 received(invitee) 3 sent(inviter) 4 open(inviter) 5 cooldown 6 outbox
-- ARGV: 1 caller 2 now 3 cool-down ms, then the event args
local inv = redis.call('HMGET', KEYS[1], 'id', 'inviter', 'invitee', 'status')
if not inv[1] then return {'not_found'} end
if ARGV[1] ~= inv[2] then
  if ARGV[1] == inv[3] then return {'not_inviter'} end
  return {'not_found'}
end
-- An ignored invitation looks pending to its inviter, who may withdraw it.
if inv[4] ~= 'pending' and inv[4] ~= 'ignored' then return {'invitation_not_pending', inv[4]} end
redis.call('HSET', KEYS[1], 'status', 'withdrawn', 'decided_at', ARGV[2])
redis.call('ZREM', KEYS[2], inv[1])
redis.call('ZREM', KEYS[3], inv[1])
if redis.call('HGET', KEYS[4], inv[3]) == inv[1] then redis.call('HDEL', KEYS[4], inv[3]) end
local cooldown = tonumber(ARGV[3])
if cooldown > 0 then
  redis.call('SET', KEYS[5], tostring(tonumber(ARGV[2]) + cooldown), 'PX', cooldown)
end
redis.call('XADD', KEYS[6], '*', unpack(ARGV, 4))
return {'withdrawn'}
""")

REMOVE = Lua(STAMP_VERSION + """
-- KEYS: 1 conn(remover) 2 conn(other) 3 outbox 4 pair-version    ARGV: 1 remover 2 other, then the event args
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return {'not_connected'} end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', unpack(stamped(3, #ARGV, redis.call('INCR', KEYS[4]))))
return {'removed'}
""")

# Degree up to 3 in one round trip. Degree 3 asks whether any connection of the member with
# fewer connections is connected to any connection of the other: ZINTERCARD ... LIMIT 1 per
# neighbour, each iterating the smaller of its two sets, at most ARGV[3] neighbours (the bound
# keeps a lookup between two huge networks from blocking the server; such members share a
# connection, which the degree-2 check has already found, almost always). The neighbours'
# keys cannot be declared in KEYS ahead of the call: this script needs the single-primary store.
RELATIONSHIP = Lua("""
-- KEYS: 1 conn(a) 2 conn(b) 3 open(a) 4 open(b)
-- ARGV: 1 a 2 b 3 degree-3 scan bound 4 conn prefix 5 conn suffix 6 invitation prefix 7 suffix
local a, b = ARGV[1], ARGV[2]
local connected = redis.call('ZSCORE', KEYS[1], b) and 1 or 0
local mutual = redis.call('ZINTERCARD', 2, KEYS[1], KEYS[2])
local degree = 0
if connected == 1 then
  degree = 1
elseif mutual > 0 then
  degree = 2
else
  local small, other = KEYS[1], KEYS[2]
  if redis.call('ZCARD', small) > redis.call('ZCARD', other) then small, other = other, small end
  if redis.call('ZCARD', other) > 0 then
    local neighbours = redis.call('ZRANGE', small, 0, tonumber(ARGV[3]) - 1)
    for _, x in ipairs(neighbours) do
      if redis.call('ZINTERCARD', 2, ARGV[4] .. x .. ARGV[5], other, 'LIMIT', 1) > 0 then
        degree = 3
        break
      end
    end
  end
end
local sent = redis.call('HGET', KEYS[3], b) or ''
local received = redis.call('HGET', KEYS[4], a) or ''
local received_status = ''
if received ~= '' then
  received_status = redis.call('HGET', ARGV[6] .. received .. ARGV[7], 'status') or ''
end
return {connected, mutual, degree, sent, received, received_status}
""")


# A block: the connection goes, the invitations between the two go (the blocker's own is
# withdrawn; the blocked member's is ignored, which is silent: to them it still looks
# pending), and the block is recorded in both directions' indexes. The open invitations are
# read ahead so their events come ready-made; the script refuses (retry) if they changed.
BLOCK = Lua(STAMP_VERSION + """
-- KEYS: 1 blocks(blocker) 2 blocked-by(blocked) 3 conn(blocker) 4 conn(blocked) 5 open(blocker)
--       6 open(blocked) 7 received(blocker) 8 received(blocked) 9 sent(blocker) 10 outbox
--       11 invitation(mine, or any key) 12 invitation(theirs, or any key) 13 pair-version
-- ARGV: 1 blocker 2 blocked 3 now 4 expected mine ('' = none) 5 expected theirs ('' = none)
--       6 n1 7 n2 8 n3, then n1 connection.removed args, n2 block.added args,
--       n3 invitation.withdrawn args (mine), then invitation.ignored args (theirs)
local blocker, blocked, now = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZSCORE', KEYS[1], blocked) then return {'exists'} end
local mine = redis.call('HGET', KEYS[5], blocked) or ''
local theirs = redis.call('HGET', KEYS[6], blocker) or ''
if mine ~= ARGV[4] or theirs ~= ARGV[5] then return {'retry'} end
local n1, n2, n3 = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local removed_at, block_at, withdrawn_at, ignored_at = 9, 9 + n1, 9 + n1 + n2, 9 + n1 + n2 + n3
redis.call('ZADD', KEYS[1], now, blocked)
redis.call('SADD', KEYS[2], blocker)
if redis.call('ZSCORE', KEYS[3], blocked) then
  redis.call('ZREM', KEYS[3], blocked)
  redis.call('ZREM', KEYS[4], blocker)
  redis.call('XADD', KEYS[10], '*', unpack(stamped(removed_at, block_at - 1, redis.call('INCR', KEYS[13]))))
end
if mine ~= '' then
  redis.call('HSET', KEYS[11], 'status', 'withdrawn', 'decided_at', now)
  redis.call('ZREM', KEYS[8], mine)
  redis.call('ZREM', KEYS[9], mine)
  redis.call('HDEL', KEYS[5], blocked)
  redis.call('XADD', KEYS[10], '*', unpack(ARGV, withdrawn_at, ignored_at - 1))
end
if theirs ~= '' and redis.call('HGET', KEYS[12], 'status') == 'pending' then
  redis.call('HSET', KEYS[12], 'status', 'ignored', 'decided_at', now)
  redis.call('ZREM', KEYS[7], theirs)
  redis.call('XADD', KEYS[10], '*', unpack(ARGV, ignored_at))
end
redis.call('XADD', KEYS[10], '*', unpack(stamped(block_at, withdrawn_at - 1, redis.call('INCR', KEYS[13]))))
return {'blocked'}
""")

UNBLOCK = Lua(STAMP_VERSION + """
-- KEYS: 1 blocks(blocker) 2 blocked-by(blocked) 3 outbox 4 pair-version
-- ARGV: 1 blocker 2 blocked, then the event args
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then return {'not_blocked'} end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', unpack(stamped(3, #ARGV, redis.call('INCR', KEYS[4]))))
return {'unblocked'}
""")

INTRODUCE = Lua("""
-- KEYS: 1 conn(requester) 2 conn(target) 3 blocks(requester) 4 blocks(target) 5 open(requester)
--       6 open(target) 7 open-introductions(requester) 8 introduction(new) 9 outbox
-- ARGV: 1 requester 2 target 3 via 4 id 5 now 6 note, then the event args
local requester, target, via = ARGV[1], ARGV[2], ARGV[3]
if redis.call('ZSCORE', KEYS[3], target) or redis.call('ZSCORE', KEYS[4], requester) then
  return {'refused'}
end
if not redis.call('ZSCORE', KEYS[1], via) or not redis.call('ZSCORE', KEYS[2], via) then
  return {'not_mutual'}
end
if redis.call('ZSCORE', KEYS[1], target) then return {'already_connected'} end
local pending = redis.call('HGET', KEYS[5], target) or redis.call('HGET', KEYS[6], requester)
if pending then return {'invitation_pending', pending} end
local open = redis.call('HGET', KEYS[7], target)
if open then return {'introduction_pending', open} end
redis.call('HSET', KEYS[8], 'id', ARGV[4], 'requester', requester, 'target', target, 'via', via,
           'note', ARGV[6], 'status', 'pending', 'created_at', ARGV[5])
redis.call('HSET', KEYS[7], target, ARGV[4])
redis.call('XADD', KEYS[9], '*', unpack(ARGV, 7))
return {'requested'}
""")

DECLINE_INTRODUCTION = Lua("""
-- KEYS: 1 introduction 2 open-introductions(requester) 3 outbox    ARGV: 1 caller 2 now, then the event args
local intro = redis.call('HMGET', KEYS[1], 'id', 'requester', 'target', 'via', 'status')
if not intro[1] then return {'not_found'} end
if ARGV[1] ~= intro[4] then return {'not_found'} end
if intro[5] ~= 'pending' then return {'introduction_not_pending', intro[5]} end
redis.call('HSET', KEYS[1], 'status', 'declined', 'decided_at', ARGV[2])
if redis.call('HGET', KEYS[2], intro[3]) == intro[1] then redis.call('HDEL', KEYS[2], intro[3]) end
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 3))
return {'declined'}
""")

ENDORSE = Lua("""
-- KEYS: 1 conn(endorser) 2 endorsers(endorsee, skill) 3 skills(endorsee) 4 names(endorsee) 5 outbox
-- ARGV: 1 endorser 2 endorsee 3 skill key 4 skill as written 5 now, then the event args
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return {'not_connected'} end
local at = redis.call('ZSCORE', KEYS[2], ARGV[1])
if at then return {'exists', at, redis.call('HGET', KEYS[4], ARGV[3]) or ARGV[4]} end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZINCRBY', KEYS[3], 1, ARGV[3])
redis.call('HSETNX', KEYS[4], ARGV[3], ARGV[4])
redis.call('XADD', KEYS[5], '*', unpack(ARGV, 6))
return {'added', ARGV[5], redis.call('HGET', KEYS[4], ARGV[3])}
""")

# People you may know, computed with bounded work and kept (docs/suggestions.md):
# 1. walk: the member's ARGV[2] most recent connections, and of each its most recent ones, at
#    most ARGV[3] steps shared out (at least ARGV[4] per neighbour), counting how often each
#    member is met (a sampled mutual count);
# 2. choose: the ARGV[5] best-counted candidates that are not the member, a connection, a
#    member with an open invitation either way, or a member blocked either way (ties: the
#    smallest ids, picked without sorting a whole bucket);
# 3. count exactly: ZINTERCARD of the two connection sets, for the chosen ones only;
# 4. keep: ranked by exact count, with the state of the member's own relationships as the
#    basis (connections: count and newest; when there are any, blocks either way: the count and
#    newest of theirs, the count of those against them), so a read can tell a list computed
#    before its own change, an unblock included, and the computation time, so a read can tell
#    an old one. (``suggestions._basis`` builds the same string.)
# Run by a read (no list, or a changed basis) or queued on a consumer's MULTI/EXEC (the worker
# precomputing), so it reads and writes in one atomic step either way.
# The walked members' keys cannot be declared ahead: this script needs the single-primary store.
SUGGEST = Lua("""
-- KEYS: 1 conn(me) 2 open(me) 3 blocks(me) 4 blocked-by(me) 5 suggestions(me) 6 state(me)
-- ARGV: 1 me 2 neighbours 3 walk budget 4 min per neighbour 5 candidates 6 keep ms 7 now ms
--       8 conn prefix 9 conn suffix 10 open prefix 11 open suffix
local me = ARGV[1]
local K, C, keep = tonumber(ARGV[2]), tonumber(ARGV[5]), ARGV[6]
local cp, cs, op, os = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local count = redis.call('ZCARD', KEYS[1])
local L = math.max(tonumber(ARGV[4]), math.floor(tonumber(ARGV[3]) / math.max(1, math.min(count, K))))
local counts = {}
for _, n in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, K - 1)) do
  for _, c in ipairs(redis.call('ZREVRANGE', cp .. n .. cs, 0, L - 1)) do
    counts[c] = (counts[c] or 0) + 1
  end
end
local excluded = {[me] = true}
for _, c in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do excluded[c] = true end
for _, c in ipairs(redis.call('HKEYS', KEYS[2])) do excluded[c] = true end
for _, c in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do excluded[c] = true end
for _, c in ipairs(redis.call('SMEMBERS', KEYS[4])) do excluded[c] = true end
local function eligible(c)
  -- Someone whose invitation to me is open: checked only for members about to be chosen.
  return redis.call('HEXISTS', op .. c .. os, me) == 0
end
local buckets, top = {}, 0
for c, k in pairs(counts) do
  if not excluded[c] then
    local b = buckets[k]
    if not b then b = {}; buckets[k] = b end
    b[#b + 1] = c
    if k > top then top = k end
  end
end
local chosen = {}
for k = top, 1, -1 do
  local b = buckets[k]
  if b then
    local need = C - #chosen
    if #b <= need then
      for _, c in ipairs(b) do
        if eligible(c) then chosen[#chosen + 1] = c end
      end
    else
      -- The smallest eligible ids of a large bucket, by insertion into a short sorted list.
      local best = {}
      for _, c in ipairs(b) do
        if #best < need or c < best[#best] then
          if eligible(c) then
            local i = #best
            if i == need then best[i] = nil; i = i - 1 end
            while i > 0 and best[i] > c do best[i + 1] = best[i]; i = i - 1 end
            best[i + 1] = c
          end
        end
      end
      for _, c in ipairs(best) do chosen[#chosen + 1] = c end
    end
    if #chosen >= C then break end
  end
end
local ranked = {}
for _, c in ipairs(chosen) do
  ranked[#ranked + 1] = {c, redis.call('ZINTERCARD', 2, KEYS[1], cp .. c .. cs)}
end
table.sort(ranked, function(x, y)
  if x[2] ~= y[2] then return x[2] > y[2] end
  return x[1] < y[1]
end)
local newest = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local basis = count .. ':' .. (newest[2] or '')
local blocking, blocked_by = redis.call('ZCARD', KEYS[3]), redis.call('SCARD', KEYS[4])
if blocking > 0 or blocked_by > 0 then
  local newest_block = redis.call('ZREVRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  basis = basis .. '|' .. blocking .. ':' .. (newest_block[2] or '') .. '|' .. blocked_by
end
redis.call('DEL', KEYS[5])
local out = {}
for _, r in ipairs(ranked) do
  redis.call('ZADD', KEYS[5], r[2], r[1])
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
end
redis.call('PEXPIRE', KEYS[5], keep)
redis.call('HSET', KEYS[6], 'basis', basis, 'computed_at', ARGV[7])
redis.call('HDEL', KEYS[6], 'stale')
redis.call('PEXPIRE', KEYS[6], keep)
return out
""")
