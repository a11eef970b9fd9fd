"""Every Redis key of the notifications service, and its Lua script. Member ids sit in hash tags.

A member's inbox is a handful of keys that share the hash tag ``{member}``, so one script can
change them together (and they would sit on one slot of a cluster):

- ``inbox:{m}``              sorted set: notification ids scored by last activity (ms)
- ``inbox-unread:{m}``       sorted set: the unread ones, same scores (ZCARD = unread count)
- ``notification:{m}:<id>``  hash: one notification's fields
- ``actors:{m}:<id>``        sorted set: a notification's distinct actors, scored by when they acted
- ``groups:{m}``             hash: group field (``post_liked|<post>``) → ``<id>|<opened_at_ms>``
- ``muted:{m}``              set: notification types the member muted
- ``live:{m}``               stream (capped): one entry per new or grown notification, for SSE
- ``live-streams:{m}``       sorted set: the member's open SSE streams (any API process), scored
                             by when they opened (ms); at most ``live_streams_per_member``
- ``live-beats:{m}``         sorted set: the same streams, scored by their last heartbeat (ms)

- ``stream-ticket:{t}``      string: the member a stream ticket ``t`` was issued to, until it is
                             used or expires (its own hash tag: the member is what it answers)

and one pub/sub channel per member, ``live-bell:{m}``: ``new`` when ``live:{m}`` grew, ``close:<id>``
when a stream must end. Pub/sub channels are not keys (and not per database): a stray ``new`` only
makes a stream read early.

Replicas of the other services' facts, built from their events:

- ``post-alerts:{author}``   set: followers who switched post alerts on for ``author``
- ``connections:{m}``        set: ``m``'s 1st-degree connections
- ``pair-version:{a|b}``     the version of the last connections event applied to a pair
- ``follow-version:{a|b}``   the version of the last follows event applied to the edge a → b
"""
from __future__ import annotations

from shared.live import LiveKeys


def inbox(member: str) -> str:
    """Sorted set: ``member``'s notification ids, scored by last activity (ms)."""
    return f"inbox:{{{member}}}"


def unread(member: str) -> str:
    """Sorted set: ``member``'s unread notification ids (ZCARD is the unread count, O(1))."""
    return f"inbox-unread:{{{member}}}"


def notification_prefix(member: str) -> str:
    return f"notification:{{{member}}}:"


def notification(member: str, notification_id: str) -> str:
    """Hash: one notification's fields."""
    return notification_prefix(member) + notification_id


def actors_prefix(member: str) -> str:
    return f"actors:{{{member}}}:"


def actors(member: str, notification_id: str) -> str:
    """Sorted set: the distinct actors of one notification, scored by when they acted."""
    return actors_prefix(member) + notification_id


def groups(member: str) -> str:
    """Hash: open group (``type|object``) → ``<notification id>|<opened at ms>``."""
    return f"groups:{{{member}}}"


def muted(member: str) -> str:
    """Set: the notification types ``member`` muted."""
    return f"muted:{{{member}}}"


def live(member: str) -> str:
    """Stream: ``member``'s new notifications as they happen, capped; read by the SSE view."""
    return f"live:{{{member}}}"


def live_streams(member: str) -> str:
    """Sorted set: ``member``'s open event streams, stream id → when it opened (ms)."""
    return f"live-streams:{{{member}}}"


def live_beats(member: str) -> str:
    """Sorted set: ``member``'s open event streams, stream id → last heartbeat (ms)."""
    return f"live-beats:{{{member}}}"


def stream_ticket(ticket: str) -> str:
    """String: the member stream ticket ``ticket`` opens the stream of (with a TTL; deleted on use)."""
    return f"stream-ticket:{{{ticket}}}"


def live_bell(member: str) -> str:
    """Pub/sub channel: rung when ``member``'s live stream grows or one of their streams must close."""
    return f"live-bell:{{{member}}}"


def bell_member(channel: str) -> str:
    """The member whose bell ``channel`` is (the inverse of ``live_bell``)."""
    return channel[len("live-bell:{"):-1]


# The keys of the live stream's machinery (shared/live.py).
LIVE = LiveKeys(stream=live, streams=live_streams, beats=live_beats, bell=live_bell, bell_member=bell_member,
                ticket=stream_ticket)


def post_alerts(author: str) -> str:
    """Set: followers of ``author`` who switched post alerts on (replica of follows.events)."""
    return f"post-alerts:{{{author}}}"


def connections(member: str) -> str:
    """Set: ``member``'s connections (replica of connections.events)."""
    return f"connections:{{{member}}}"


def pair_version(a: str, b: str) -> str:
    """String: the version of the last connections event applied to the pair (either order)."""
    first, second = sorted((a, b))
    return f"pair-version:{{{first}|{second}}}"


def follow_version(follower: str, followee: str) -> str:
    """String: the version of the last follows event applied to the edge ``follower`` → ``followee``."""
    return f"follow-version:{{{follower}|{followee}}}"


# Stores or grows one notification, all or nothing. Every key it touches carries the
# recipient's hash tag (the per-notification keys are built from the prefixes passed in).
#
# A muted type is not stored at all: muting is a filter at the door, not a hidden flag, so
# unmuting later does not resurface what happened meanwhile.
#
# Sent with EVAL, not EVALSHA: inside a consumer's MULTI a missing script would only show at
# EXEC, and redis-py's pipeline would check SCRIPT EXISTS first, a round trip per event.
#
# Returns 1 when the inbox changed (new notification, or a group that gained an actor), else 0.
NOTIFY = """
local inbox, unread, groups, muted, live = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local nprefix, aprefix, nid, ntype, actor = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local object, text, about = ARGV[6], ARGV[7], ARGV[8]
local at, group = tonumber(ARGV[9]), ARGV[10]
local window, cap, live_cap = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local bell = ARGV[14]

if redis.call('SISMEMBER', muted, ntype) == 1 then return 0 end

local function announce(id)
  redis.call('XADD', live, 'MAXLEN', '~', live_cap, '*', 'id', id)
  redis.call('PUBLISH', bell, 'new')  -- wakes the member's open streams, whichever process holds them
end

if group ~= '' then
  local open = redis.call('HGET', groups, group)
  if open then
    local sep = string.find(open, '|', 1, true)
    local gid, opened = string.sub(open, 1, sep - 1), tonumber(string.sub(open, sep + 1))
    if math.abs(at - opened) < window and redis.call('EXISTS', nprefix .. gid) == 1 then
      -- Join the open group. An actor already in it (a duplicate, a like after an unlike)
      -- changes nothing: the group only moves up when it grows.
      if redis.call('ZADD', aprefix .. gid, 'NX', at, actor) == 0 then return 0 end
      local score = tonumber(redis.call('ZSCORE', inbox, gid))
      if at > score then score = at end
      redis.call('HSET', nprefix .. gid, 'updated_at_ms', score)
      if text ~= '' then redis.call('HSET', nprefix .. gid, 'text', text) end
      redis.call('ZADD', inbox, score, gid)
      redis.call('ZADD', unread, score, gid)  -- grown: news again
      announce(gid)
      return 1
    end
  end
end

if redis.call('ZSCORE', inbox, nid) then return 0 end  -- this event was already stored

redis.call('HSET', nprefix .. nid, 'id', nid, 'type', ntype, 'object', object, 'text', text,
           'about', about, 'group', group, 'created_at_ms', at, 'updated_at_ms', at)
redis.call('ZADD', aprefix .. nid, at, actor)
redis.call('ZADD', inbox, at, nid)
redis.call('ZADD', unread, at, nid)
if group ~= '' then redis.call('HSET', groups, group, nid .. '|' .. at) end

-- At most `cap` notifications: the least recently active go, with everything they own.
local excess = redis.call('ZCARD', inbox) - cap
if excess > 0 then
  local gone = redis.call('ZPOPMIN', inbox, excess)
  for i = 1, #gone, 2 do
    local old = gone[i]
    redis.call('ZREM', unread, old)
    local g = redis.call('HGET', nprefix .. old, 'group')
    if g and g ~= '' then
      local cur = redis.call('HGET', groups, g)
      if cur and string.sub(cur, 1, #old + 1) == old .. '|' then redis.call('HDEL', groups, g) end
    end
    redis.call('DEL', nprefix .. old, aprefix .. old)
  end
  if redis.call('EXISTS', nprefix .. nid) == 0 then return 0 end  -- older than everything kept
end
announce(nid)
return 1
"""
