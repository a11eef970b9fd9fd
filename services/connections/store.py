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
"""
from __future__ import annotations

from typing import Mapping

import redis

CONNECTIONS_PREFIX, CONNECTIONS_SUFFIX = "connections:{", "}"
INVITATION_PREFIX, INVITATION_SUFFIX = "invitation:{", "}"


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
    return f"invitations-open:{{{inviter}}}"


def invitation_log(inviter: str) -> str:
    """Sorted set: every invitation ``inviter`` sent within the rolling window, scored by when."""
    return f"invitations-log:{{{inviter}}}"


def reinvite_cooldown(inviter: str, invitee: str) -> str:
    """String with a TTL: until when (ms) ``inviter`` may not invite ``invitee`` again."""
    return f"reinvite-cooldown:{{{inviter}}}:{invitee}"


def member_settings(member: str) -> str:
    """Hash: ``member``'s connection settings (connections_visibility)."""
    return f"connection-settings:{{{member}}}"


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

SEND = Lua(_CONNECT + """
-- KEYS: 1 conn(inviter) 2 conn(invitee) 3 open(inviter) 4 open(invitee) 5 invitation(new)
--       6 received(invitee) 7 sent(inviter) 8 log(inviter) 9 cooldown(inviter,invitee)
--       10 outbox 11 invitation(reverse) 12 received(inviter) 13 sent(invitee)
-- ARGV: 1 inviter 2 invitee 3 new id 4 now 5 message 6 window ms 7 weekly limit
--       8 max connections 9 expected reverse id ('' = none) 10 n, then n sent-event args,
--       then the accepted-event args (when a reverse id is expected)
local inviter, invitee, id, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local max = tonumber(ARGV[8])
if redis.call('ZSCORE', KEYS[1], invitee) then return {'already_connected'} end
local mine = redis.call('HGET', KEYS[3], invitee)
if mine then return {'invitation_pending', mine} end
local reverse = redis.call('HGET', KEYS[4], inviter) or ''
if reverse ~= ARGV[9] then return {'retry'} end
local n = tonumber(ARGV[10])
if reverse ~= '' then
  -- Crossing invitations: the invitee already asked, so this is a yes.
  if full(KEYS[1], max) then return {'connection_limit_reached', inviter} end
  if full(KEYS[2], max) then return {'connection_limit_reached', invitee} end
  connect(KEYS[11], reverse, invitee, inviter, now, KEYS[2], KEYS[1], KEYS[4], KEYS[12], KEYS[13])
  redis.call('XADD', KEYS[10], '*', unpack(ARGV, 11 + n))
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
           'status', 'pending', 'created_at', now)
redis.call('ZADD', KEYS[6], now, id)
redis.call('ZADD', KEYS[7], now, id)
redis.call('HSET', KEYS[3], invitee, id)
redis.call('ZADD', KEYS[8], now, id)
redis.call('PEXPIRE', KEYS[8], ARGV[6])
redis.call('XADD', KEYS[10], '*', unpack(ARGV, 11, 10 + n))
return {'sent', id}
""")

ACCEPT = Lua(_CONNECT + """
-- KEYS: 1 invitation 2 conn(inviter) 3 conn(invitee) 4 open(inviter) 5 received(invitee)
--       6 sent(inviter) 7 outbox
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
redis.call('XADD', KEYS[7], '*', unpack(ARGV, 4))
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

REMOVE = Lua("""
-- KEYS: 1 conn(remover) 2 conn(other) 3 outbox    ARGV: 1 remover 2 other, then the event args
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return {'not_connected'} end
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 3))
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
