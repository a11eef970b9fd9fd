"""Every Redis key of the notifications service, and its Lua scripts.

Every key starts with ``notifications:`` and carries the shard tag of its member
(``shared.slots``), so a member's inbox is a handful of keys of one slot that one script
changes together (``{s}`` below is the member's shard tag):

- ``notifications:{s}:inbox:m``      sorted set: notification ids scored by last activity (ms)
- ``notifications:{s}:unread:m``     sorted set: the unread ones, same scores (ZCARD = unread count)
- ``notifications:{s}:notes:m``      hash: notification id → the notification as JSON (its fields,
                                     ``actor_count`` and its newest ``SHOWN_ACTORS`` actors)
- ``notifications:{s}:actors:m``     sorted set, every score 0: ``<id>|<actor>`` for each distinct
                                     actor of each notification (how a group knows an actor
                                     joined already); a notification's range goes with it
- ``notifications:{s}:by-actor:m``   sorted set, scores 0: ``<actor>|<id>``, the inverse of ``actors``
- ``notifications:{s}:notifiers:m``  set: every actor ``m``'s inbox ever had (never shrinks)
- ``notifications:{s}:acted-in:a``   set: the owners whose inbox may name ``a`` as an actor
                                     (``by-actor``, ``notifiers`` and ``acted-in`` are footprints for
                                     closing an account without a SCAN: services/notifications/closing.py)
- ``notifications:{s}:groups:m``     hash: group field (``post_liked|<post>``) → ``<id>|<opened_at_ms>``
- ``notifications:{s}:muted:m``      set: notification types the member muted
- ``notifications:{s}:live:m``       stream (capped): one entry per new or grown notification, for
                                     SSE; appended by the script that stores the notification, so in
                                     the inbox's slot
- ``live-streams:{m}``               sorted set: the member's open SSE streams (any API process), scored
                                     by when they opened (ms); at most ``live_streams_per_member``
- ``live-beats:{m}``                 sorted set: the same streams, scored by their last heartbeat (ms)

- ``stream-ticket:{t}``      string: the member a stream ticket ``t`` was issued to, until it is
                             used or expires (its own hash tag: the member is what it answers)

and one pub/sub channel per member, ``live-bell:{m}``: ``new`` when the live stream grew, ``close:<id>``
when a stream must end. Pub/sub channels are not keys (and not per database): a stray ``new`` only
makes a stream read early.

Replicas of the other services' facts, built from their events, one side per member in
that member's slot, each with the version of the last event applied beside it:

- ``notifications:{s}:post-alerts:author``                  set: followers who switched post alerts on
- ``notifications:{s}:alert-version:author|follower``       the version applied to that entry
- ``notifications:{s}:connections:m``                       set: ``m``'s 1st-degree connections
- ``notifications:{s}:pair-version:m|other``                the version applied to ``m``'s side of the pair
- ``notifications:{s}:alerts-to:follower``, ``alert-seen:author``, ``paired:m``  footprints: whom the
  versions above name (services/notifications/closing.py)
"""
from __future__ import annotations

from shared import slots
from shared.live import LiveKeys
from shared.lua import LuaScript

# The shard count of this process (``Settings.shards``), set once at start-up by the app
# factory and the worker (``use_shards``).
_shards = slots.DEFAULT_SHARDS


def use_shards(shards: int) -> None:
    global _shards
    _shards = shards


def shard(member: str) -> str:
    """The hash tag of ``member``'s shard: of every key of their inbox and replicas."""
    return slots.tag(member, _shards)


def _key(name: str, member: str) -> str:
    return f"notifications:{shard(member)}:{name}:{member}"


def inbox(member: str) -> str:
    """Sorted set: ``member``'s notification ids, scored by last activity (ms)."""
    return _key("inbox", member)


def unread(member: str) -> str:
    """Sorted set: ``member``'s unread notification ids (ZCARD is the unread count, O(1))."""
    return _key("unread", member)


def notes(member: str) -> str:
    """Hash: notification id → the notification as JSON."""
    return _key("notes", member)


def actors(member: str) -> str:
    """Sorted set (scores 0): ``<notification id>|<actor>`` for every distinct actor of each notification."""
    return _key("actors", member)


def by_actor(member: str) -> str:
    """Sorted set (scores 0), the inverse of ``actors``: ``<actor>|<notification id>``, kept with it
    by NOTIFY and ERASE_ACTOR, so one actor's notifications of ``member`` are a lex range."""
    return _key("by-actor", member)


def notifiers(member: str) -> str:
    """Set (footprint): every actor of a notification ``member`` ever had (NOTIFY); it does not
    shrink when a notification is dropped, so closing ``member`` finds every ``acted_in`` naming them."""
    return _key("notifiers", member)


def acted_in(actor: str) -> str:
    """Set (footprint, the actor's slot): the members whose inbox may name ``actor`` as an actor,
    added by the inbox consumer before the notification, so a closed account's name is found in
    others' notifications without a SCAN."""
    return _key("acted-in", actor)


def alerts_to(follower: str) -> str:
    """Set (footprint, the follower's slot): the authors whose ``alert_version`` names ``follower``,
    added by the consumer before the version."""
    return _key("alerts-to", follower)


def alert_seen(author: str) -> str:
    """Set (footprint): every follower an ``alert_version(author, …)`` names (SET_SIDE)."""
    return _key("alert-seen", author)


def paired(member: str) -> str:
    """Set (footprint): every other member a ``pair_version(member, …)`` names (SET_SIDE)."""
    return _key("paired", member)


def groups(member: str) -> str:
    """Hash: open group (``type|object``) → ``<notification id>|<opened at ms>``."""
    return _key("groups", member)


def muted(member: str) -> str:
    """Set: the notification types ``member`` muted."""
    return _key("muted", member)


def live(member: str) -> str:
    """Stream: ``member``'s new notifications as they happen, capped; read by the SSE view.
    In the inbox's slot: the script that stores a notification appends to it."""
    return _key("live", member)


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
    return _key("post-alerts", author)


def alert_version(author: str, follower: str) -> str:
    """String, beside ``post_alerts(author)``: the version of the last follows event of the edge
    ``follower`` → ``author`` applied there."""
    return f"notifications:{shard(author)}:alert-version:{author}|{follower}"


def connections(member: str) -> str:
    """Set: ``member``'s connections (replica of connections.events)."""
    return _key("connections", member)


def pair_version(member: str, other: str) -> str:
    """String, in ``member``'s slot: the version of the last connections event of the pair applied
    to ``member``'s side."""
    return f"notifications:{shard(member)}:pair-version:{member}|{other}"


# Stores or grows one notification of one member, all or nothing; every key is of the
# member's slot. Replies 'stored' (a new notification), 'grown' (an open group gained an
# actor), 'unchanged' (the actor was in the group already), 'duplicate' (this notification
# id is stored already), 'muted' (a muted type is not stored at all: muting is a filter at
# the door, not a hidden flag, so unmuting later does not resurface what happened
# meanwhile) or 'dropped' (older than every notification the cap keeps).
#
# A grouped type joins the member's open group of the same ``group`` opened less than
# ``window`` ms before; a group that grows moves up and is unread again. At most ``cap``
# notifications are kept, the least recently active dropped with their actors. A stored or
# grown one is appended to the live stream (capped at ``live_cap``) and rings ``bell``.
NOTIFY = LuaScript("notify", keys=("inbox", "unread", "notes", "actors", "groups", "muted", "live", "by_actor",
                                   "notifiers"),
                   args=("id", "type", "actor", "object", "text", "about", "at", "group", "window", "cap",
                         "shown", "live_cap", "bell"), source="""
if redis.call('SISMEMBER', K.muted, A.type) == 1 then return 'muted' end
local at, shown = tonumber(A.at), tonumber(A.shown)

local function announce(id)
  redis.call('XADD', K.live, 'MAXLEN', '~', A.live_cap, '*', 'id', id)
  redis.call('PUBLISH', A.bell, 'new')  -- wakes the member's open streams, whichever process holds them
end

-- A notification keeps its newest `shown` actors (newest first) and counts them all.
local function add_actor(note, actor)
  local recent, place = note.recent, #note.recent + 1
  for j, entry in ipairs(recent) do
    if at > entry[2] then place = j; break end
  end
  table.insert(recent, place, {actor, at})
  while #recent > shown do table.remove(recent) end
  note.actor_count = note.actor_count + 1
end

if A.group ~= '' then
  local open = redis.call('HGET', K.groups, A.group)
  if open then
    local sep = string.find(open, '|', 1, true)
    local gid, opened = string.sub(open, 1, sep - 1), tonumber(string.sub(open, sep + 1))
    local raw = redis.call('HGET', K.notes, gid)
    if raw and math.abs(at - opened) < tonumber(A.window) then
      -- Join the open group. An actor already in it (a duplicate, a like after an unlike)
      -- changes nothing: the group only moves up when it grows.
      if redis.call('ZADD', K.actors, 'NX', 0, gid .. '|' .. A.actor) == 0 then return 'unchanged' end
      redis.call('ZADD', K.by_actor, 0, A.actor .. '|' .. gid)
      redis.call('SADD', K.notifiers, A.actor)
      local note = cjson.decode(raw)
      add_actor(note, A.actor)
      local score = tonumber(redis.call('ZSCORE', K.inbox, gid))
      if at > score then score = at end
      note.updated_at_ms = score
      if A.text ~= '' then note.text = A.text end
      redis.call('HSET', K.notes, gid, cjson.encode(note))
      redis.call('ZADD', K.inbox, score, gid)
      redis.call('ZADD', K.unread, score, gid)  -- grown: news again
      announce(gid)
      return 'grown'
    end
  end
end

if redis.call('ZSCORE', K.inbox, A.id) then return 'duplicate' end

local note = {id = A.id, type = A.type, object = A.object, text = A.text, about = A.about, group = A.group,
              created_at_ms = at, updated_at_ms = at, actor_count = 0, recent = {}}
add_actor(note, A.actor)
redis.call('HSET', K.notes, A.id, cjson.encode(note))
redis.call('ZADD', K.actors, 'NX', 0, A.id .. '|' .. A.actor)
redis.call('ZADD', K.by_actor, 0, A.actor .. '|' .. A.id)
redis.call('SADD', K.notifiers, A.actor)
redis.call('ZADD', K.inbox, at, A.id)
redis.call('ZADD', K.unread, at, A.id)
if A.group ~= '' then redis.call('HSET', K.groups, A.group, A.id .. '|' .. at) end

-- At most `cap` notifications: the least recently active go, with everything they own.
local excess = redis.call('ZCARD', K.inbox) - tonumber(A.cap)
if excess > 0 then
  local gone = redis.call('ZPOPMIN', K.inbox, excess)
  for i = 1, #gone, 2 do
    local old = gone[i]
    redis.call('ZREM', K.unread, old)
    local raw = redis.call('HGET', K.notes, old)
    if raw then
      local g = cjson.decode(raw).group
      if g and g ~= '' then
        local cur = redis.call('HGET', K.groups, g)
        if cur and string.sub(cur, 1, #old + 1) == old .. '|' then redis.call('HDEL', K.groups, g) end
      end
    end
    redis.call('HDEL', K.notes, old)
    -- Its actors: every '<old>|…' entry ('}' follows '|'), whatever other ids begin with <old>.
    for _, entry in ipairs(redis.call('ZRANGEBYLEX', K.actors, '[' .. old .. '|', '(' .. old .. '}')) do
      redis.call('ZREM', K.by_actor, string.sub(entry, #old + 2) .. '|' .. old)
    end
    redis.call('ZREMRANGEBYLEX', K.actors, '[' .. old .. '|', '(' .. old .. '}')
  end
  if redis.call('HEXISTS', K.notes, A.id) == 0 then return 'dropped' end
end
announce(A.id)
return 'stored'
""")

# A closed account leaves one notification of one member (all keys of that member's slot):
# its actor entry goes, the count drops and its name leaves the shown actors; a notification
# whose only actor it was goes with its group. Nothing changes when the actor entry is gone
# already (ZREM's reply), so a retried erasure counts nobody off twice. Replies 'gone'
# (the notification went), 'shrunk' or 'unchanged'.
ERASE_ACTOR = LuaScript("erase_actor", keys=("inbox", "unread", "notes", "actors", "groups", "by_actor"),
                        args=("id", "actor"), source="""
redis.call('ZREM', K.by_actor, A.actor .. '|' .. A.id)
if redis.call('ZREM', K.actors, A.id .. '|' .. A.actor) == 0 then return 'unchanged' end
local raw = redis.call('HGET', K.notes, A.id)
if not raw then return 'unchanged' end
local note = cjson.decode(raw)
note.actor_count = note.actor_count - 1
local recent = {}
for _, entry in ipairs(note.recent) do
  if entry[1] ~= A.actor then recent[#recent + 1] = entry end
end
if note.actor_count > 0 and #recent > 0 then
  note.recent = recent
  redis.call('HSET', K.notes, A.id, cjson.encode(note))
  return 'shrunk'
end
redis.call('ZREM', K.inbox, A.id)
redis.call('ZREM', K.unread, A.id)
redis.call('HDEL', K.notes, A.id)
if note.group and note.group ~= '' then
  local cur = redis.call('HGET', K.groups, note.group)
  if cur and string.sub(cur, 1, #A.id + 1) == A.id .. '|' then redis.call('HDEL', K.groups, note.group) end
end
for _, entry in ipairs(redis.call('ZRANGEBYLEX', K.actors, '[' .. A.id .. '|', '(' .. A.id .. '}')) do
  redis.call('ZREM', K.by_actor, string.sub(entry, #A.id + 2) .. '|' .. A.id)
end
redis.call('ZREMRANGEBYLEX', K.actors, '[' .. A.id .. '|', '(' .. A.id .. '}')
return 'gone'
""")

# One member's side of a replicated fact: ``member`` in (present '1') or out of (present
# '0') ``set``, when ``version`` is newer than the one held beside it. Replies 'applied',
# 'current' (this version was applied already) or 'stale' (an older one). Used for post
# alerts (an author's side of a follow edge) and connections (each member's side of a pair).
# ``seen`` is the footprint of the versions kept beside ``set`` (whom they name).
SET_SIDE = LuaScript("set_side", keys=("set", "version", "seen"), args=("member", "present", "version"), source="""
local held = tonumber(redis.call('GET', K.version) or '0')
local version = tonumber(A.version)
if version < held then return 'stale' end
if version == held then return 'current' end
redis.call('SADD', K.seen, A.member)
redis.call('SET', K.version, A.version)
if A.present == '1' then
  redis.call('SADD', K.set, A.member)
else
  redis.call('SREM', K.set, A.member)
end
return 'applied'
""")


# Registers an open stream of one member, forgets streams whose process stopped sending
# heartbeats, and returns the ids of the oldest beyond the cap: their holders close them.
# KEYS: live-streams (by opening), live-beats (by heartbeat), one member's, so one slot.
# ARGV: stream id, now (ms), stale before (ms), cap, keys' TTL (s).
OPEN_STREAM = """
local opened, beats, id, now = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local stale, cap, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local dead = redis.call('ZRANGEBYSCORE', beats, '-inf', '(' .. stale)
for _, old in ipairs(dead) do
  redis.call('ZREM', opened, old)
  redis.call('ZREM', beats, old)
end
redis.call('ZADD', opened, now, id)
redis.call('ZADD', beats, now, id)
redis.call('EXPIRE', opened, ttl)
redis.call('EXPIRE', beats, ttl)
local excess = redis.call('ZCARD', opened) - cap
if excess <= 0 then return {} end
local evicted = {}
local gone = redis.call('ZPOPMIN', opened, excess)
for i = 1, #gone, 2 do
  evicted[#evicted + 1] = gone[i]
  redis.call('ZREM', beats, gone[i])
end
return evicted
"""

# A stream's heartbeat: 1 while it is registered (its beat refreshed), 0 once it was closed
# from elsewhere (evicted by a newer stream). KEYS as OPEN_STREAM's. ARGV: stream id, now (ms), TTL (s).
STREAM_HEARTBEAT = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""
