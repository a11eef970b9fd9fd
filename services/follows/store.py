"""Every Redis key of the follows service, and its Lua scripts; nothing else touches them.

Every key starts with ``follows:`` and carries its member's shard tag (``shared.slots``), so each
script and transaction touches one hash slot and the store can be a Redis Cluster:

- a follow edge is authoritative in the **follower's** slot (``following``, ``alerts``, the
  edge's ``follow_version``), written by one script together with its event on the outbox
  stream of that slot;
- the followee's ``followers`` (and so their count) are a projection in the **followee's**
  slot, brought to the edge's version by ``PROJECT_FOLLOWER`` (the request at once, the follows
  worker again from follows.events);
- the replica of connections.events is kept per member, in the member's slot: their
  connections, whom they blocked, who blocked them, and the last pair version applied.
"""
from __future__ import annotations

import functools

from shared.events.envelope import STAMP_VERSION
from shared.lua import LuaScript
from shared.settings import load_settings
from shared.slots import shard_of, shard_tag

SERVICE = "follows"


@functools.cache
def shards() -> int:
    """The number of shards (``RAPPORT_SHARDS``), read once per process: fixed for a deployment."""
    return load_settings().shards


def member_tag(member: str) -> str:
    return shard_tag(shard_of(member, shards()))


def _m(kind: str, member: str) -> str:
    return f"{SERVICE}:{member_tag(member)}:{kind}:{member}"


# --- follow edges (the follower's slot) --------------------------------------------------

def following(member: str) -> str:
    """Sorted set: whom ``member`` follows, scored by when (ms). Authoritative."""
    return _m("following", member)


def alerts(member: str) -> str:
    """Set: the followees ``member`` gets post alerts for."""
    return _m("alerts", member)


def follow_version(follower: str, followee: str) -> str:
    """Counter: the version of the edge ``follower`` → ``followee``, incremented by the script
    that changes the edge (created, updated, removed) and emits its event."""
    return f"{SERVICE}:{member_tag(follower)}:follow-version:{follower}:{followee}"


def followed(member: str) -> str:
    """Set (footprint): every followee whose edge from ``member`` has a ``follow_version``, kept
    by the scripts that number the edge, so a closed account's versions are found without a
    SCAN. Never shrinks (a version outlives its edge, to order a later follow)."""
    return _m("followed", member)


def follow_setting(member: str) -> str:
    """Hash: ``member``'s follow setting (field ``followers``: everyone | connections)."""
    return _m("follow-setting", member)


# --- the followee's slot (projection) -------------------------------------------------------

def followers(member: str) -> str:
    """Sorted set (projection of the followers' edges): who follows ``member``, scored by when (ms)."""
    return _m("followers", member)


def followers_version(member: str) -> str:
    """Hash: follower → the edge version ``followers(member)`` was last brought to."""
    return _m("followers-version", member)


# --- the replica of connections.events (each member's slot) ---------------------------------

def connections(member: str) -> str:
    """Set: ``member``'s 1st-degree connections, as learnt from connections.events."""
    return _m("connections", member)


def blocks(member: str) -> str:
    """Set: the members ``member`` has blocked."""
    return _m("blocks", member)


def blocked_by(member: str) -> str:
    """Set: the members who have blocked ``member``."""
    return _m("blocked-by", member)


def pair_version(member: str, other: str) -> str:
    """String: the version of the last connections event of the pair applied to ``member``'s side."""
    return f"{SERVICE}:{member_tag(member)}:pair-version:{member}:{other}"


def paired(member: str) -> str:
    """Set (footprint): every other member a ``pair_version`` of ``member``'s side names, written
    with it (same slot, same transaction) so a closed account's versions are found without a SCAN."""
    return _m("paired", member)


# --- scripts --------------------------------------------------------------------------

# In the follower's slot. The refusal checks, the edge and its event happen at once: no follow
# slips past a block (the follower's replica holds blocks either way). The followee's follow
# setting lives in their slot: it is read before and passed as ``restricted`` (a follow racing a
# change of the setting is one made just before it, which the change would not have removed).
FOLLOW = LuaScript("follow", keys=("following", "alerts", "blocks", "blocked_by", "connections", "outbox", "version",
                                   "followed"),
                   args=("follower", "followee", "now", "notify", "restricted", "*events"), source=STAMP_VERSION + """
-- events: created (6 fields), then updated (6 fields); stamped() counts ARGV from 1.
local base = 5
if redis.call('SISMEMBER', K.blocks, A.followee) == 1 or redis.call('SISMEMBER', K.blocked_by, A.followee) == 1 then
  return {'refused', '', 0, 0}
end
local since = redis.call('ZSCORE', K.following, A.followee)
if since then
  local alert = redis.call('SISMEMBER', K.alerts, A.followee)
  if A.notify ~= '' and tonumber(A.notify) ~= alert then
    if A.notify == '1' then
      redis.call('SADD', K.alerts, A.followee)
    else
      redis.call('SREM', K.alerts, A.followee)
    end
    redis.call('SADD', K.followed, A.followee)
    local v = redis.call('INCR', K.version)
    redis.call('XADD', K.outbox, '*', unpack(stamped(base + 7, base + 12, v)))
    return {'updated', since, tonumber(A.notify), v}
  end
  return {'existing', since, alert, 0}
end
if A.restricted == '1' and redis.call('SISMEMBER', K.connections, A.followee) == 0 then
  return {'restricted', '', 0, 0}
end
redis.call('ZADD', K.following, A.now, A.followee)
local alert = 0
if A.notify == '1' then
  redis.call('SADD', K.alerts, A.followee)
  alert = 1
end
redis.call('SADD', K.followed, A.followee)
local v = redis.call('INCR', K.version)
redis.call('XADD', K.outbox, '*', unpack(stamped(base + 1, base + 6, v)))
return {'created', A.now, alert, v}
""")

# In the follower's slot. Replies the edge's new version, 0 when there was no follow.
UNFOLLOW = LuaScript("unfollow", keys=("following", "alerts", "outbox", "version", "followed"),
                     args=("follower", "followee", "*event"), source=STAMP_VERSION + """
if redis.call('ZREM', K.following, A.followee) == 0 then
  return 0
end
redis.call('SREM', K.alerts, A.followee)
redis.call('SADD', K.followed, A.followee)
local v = redis.call('INCR', K.version)
redis.call('XADD', K.outbox, '*', unpack(stamped(3, 8, v)))
return v
""")

# In the followee's slot: their followers brought to the edge as it stood at ``version``
# (``since`` '' = not following); a version not newer than the one applied changes nothing.
PROJECT_FOLLOWER = LuaScript("project_follower", keys=("followers", "versions"),
                             args=("follower", "version", "since"), source="""
local last = tonumber(redis.call('HGET', K.versions, A.follower) or '0')
if tonumber(A.version) <= last then return 0 end
redis.call('HSET', K.versions, A.follower, A.version)
if A.since ~= '' then
  redis.call('ZADD', K.followers, A.since, A.follower)
else
  redis.call('ZREM', K.followers, A.follower)
end
return 1
""")

# In the follower's slot: the edge as it is now, read at one instant (its since, or false when
# not following; its version, or false when it has none).
EDGE_NOW = LuaScript("edge_now", keys=("following", "version"), args=("followee",), source="""
return {redis.call('ZSCORE', K.following, A.followee), redis.call('GET', K.version)}
""")

# In the member's slot. Emits only on a change.
SET_FOLLOW_SETTING = LuaScript("set_follow_setting", keys=("setting", "outbox"), args=("value", "*event"), source="""
local old = redis.call('HGET', K.setting, 'followers') or 'everyone'
if old == A.value then
  return 0
end
redis.call('HSET', K.setting, 'followers', A.value)
redis.call('XADD', K.outbox, '*', unpack(A.event))
return 1
""")

# Every script of the service, for the tests that check the convention.
SCRIPTS = (FOLLOW, UNFOLLOW, PROJECT_FOLLOWER, EDGE_NOW, SET_FOLLOW_SETTING)
