"""Every Redis key of the follows service, and its Lua scripts; nothing else touches them.

Member ids sit in hash tags (``{ada}``) so a member's keys can share a cluster slot. A follow
touches two members' keys (and the outbox) in one script: the follows store is one Redis
primary (ARCHITECTURE.md), so that is atomic; only the timeline cache must be cluster-ready.
"""
from __future__ import annotations

import redis
from redis.commands.core import Script

from shared.events.envelope import STAMP_VERSION


# --- follow edges ---------------------------------------------------------------------

def following(member: str) -> str:
    """Sorted set: whom ``member`` follows, scored by when (ms)."""
    return f"following:{{{member}}}"


def followers(member: str) -> str:
    """Sorted set: who follows ``member``, scored by when (ms)."""
    return f"followers:{{{member}}}"


def alerts(member: str) -> str:
    """Set: the followees ``member`` gets post alerts for."""
    return f"alerts:{{{member}}}"


def follow_version(follower: str, followee: str) -> str:
    """Counter: the version of the edge ``follower`` → ``followee``, incremented by the script
    that changes the edge (created, updated, removed) and emits its event."""
    return f"follow-version:{{{follower}|{followee}}}"


def follow_setting(member: str) -> str:
    """Hash: ``member``'s follow setting (field ``followers``: everyone | connections)."""
    return f"follow-setting:{{{member}}}"


# --- the replica of connections.events ------------------------------------------------

def connections(member: str) -> str:
    """Set: ``member``'s 1st-degree connections, as learnt from connections.events."""
    return f"connections:{{{member}}}"


def blocks(member: str) -> str:
    """Set: the members ``member`` has blocked."""
    return f"blocks:{{{member}}}"


def pair_version(a: str, b: str) -> str:
    """String: the version of the last connections event applied to the pair (either order)."""
    first, second = sorted((a, b))
    return f"pair-version:{{{first}|{second}}}"


# --- scripts --------------------------------------------------------------------------

# KEYS: following:{a} followers:{b} alerts:{a} blocks:{a} blocks:{b} follow-setting:{b}
#       connections:{b} outbox follow-version:{a|b}
# ARGV: a b now_ms notify('1'|'0'|'' = keep) created-event(6 fields) updated-event(6 fields)
# The refusal checks, the edge and its event happen at once: no follow slips past a block or
# a setting that changed a moment before.
FOLLOW = STAMP_VERSION + """
if redis.call('SISMEMBER', KEYS[4], ARGV[2]) == 1 or redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1 then
  return {'refused', '', 0}
end
local since = redis.call('ZSCORE', KEYS[1], ARGV[2])
if since then
  local alert = redis.call('SISMEMBER', KEYS[3], ARGV[2])
  if ARGV[4] ~= '' and tonumber(ARGV[4]) ~= alert then
    if ARGV[4] == '1' then
      redis.call('SADD', KEYS[3], ARGV[2])
    else
      redis.call('SREM', KEYS[3], ARGV[2])
    end
    redis.call('XADD', KEYS[8], '*', unpack(stamped(11, 16, redis.call('INCR', KEYS[9]))))
    return {'updated', since, tonumber(ARGV[4])}
  end
  return {'existing', since, alert}
end
if redis.call('HGET', KEYS[6], 'followers') == 'connections'
   and redis.call('SISMEMBER', KEYS[7], ARGV[1]) == 0 then
  return {'restricted', '', 0}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local alert = 0
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[3], ARGV[2])
  alert = 1
end
redis.call('XADD', KEYS[8], '*', unpack(stamped(5, 10, redis.call('INCR', KEYS[9]))))
return {'created', ARGV[3], alert}
"""

# KEYS: following:{a} followers:{b} alerts:{a} outbox follow-version:{a|b}
# ARGV: a b removed-event(6 fields)
UNFOLLOW = STAMP_VERSION + """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
redis.call('XADD', KEYS[4], '*', unpack(stamped(3, 8, redis.call('INCR', KEYS[5]))))
return 1
"""

# KEYS: follow-setting:{m} outbox   ARGV: value event(6 fields). Emits only on a change.
SET_FOLLOW_SETTING = """
local old = redis.call('HGET', KEYS[1], 'followers') or 'everyone'
if old == ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'followers', ARGV[1])
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2, 7))
return 1
"""

_scripts: dict[str, Script] = {}


def script(client: redis.Redis | redis.client.Pipeline, text: str) -> Script:
    """The script ``text``, callable on ``client`` or on any pipeline (``client=tx``)."""
    found = _scripts.get(text)
    if found is None:
        found = _scripts[text] = Script(client, text)
    return found
