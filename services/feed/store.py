"""Every Redis key of the feed service, and its Lua scripts; nothing else builds them.

Two Redis servers:

- the **store** (system of record): posts, likes, comments, the audience replica;
- the **cache**: one timeline per member, rebuildable from the store at any time.

A post id is ``<author>~<stamp>`` (``~`` is never in a member id), so a post's keys share
its author's hash tag and a timeline entry tells who wrote it without a lookup.
"""
from __future__ import annotations

# --- posts (store) ------------------------------------------------------------------


def post(post_id: str) -> str:
    """Hash: one post's fields and its like/comment/reshare counters."""
    return f"post:{{{author_of(post_id)}}}:{stamp_of(post_id)}"


def likers(post_id: str) -> str:
    """Set: who likes the post."""
    return f"likers:{{{author_of(post_id)}}}:{stamp_of(post_id)}"


def comments(post_id: str) -> str:
    """Sorted set: the post's comment ids, scored by when (ms)."""
    return f"comments:{{{author_of(post_id)}}}:{stamp_of(post_id)}"


def comment_bodies(post_id: str) -> str:
    """Hash: comment id → the comment as JSON."""
    return f"comment-bodies:{{{author_of(post_id)}}}:{stamp_of(post_id)}"


def posts(author: str) -> str:
    """Sorted set: every live post of ``author``, scored by creation time (ms)."""
    return f"posts:{{{author}}}"


def public_posts(author: str) -> str:
    """Sorted set: the public subset of ``posts(author)``: what a non-connection may see."""
    return f"public-posts:{{{author}}}"


# --- the audience replica (store), built from follows.events and connections.events ----


def followers(member: str) -> str:
    """Sorted set: who follows ``member``, scored by since (ms)."""
    return f"followers:{{{member}}}"


def following(member: str) -> str:
    """Sorted set: whom ``member`` follows, scored by since (ms)."""
    return f"following:{{{member}}}"


def connections(member: str) -> str:
    """Set: ``member``'s 1st-degree connections."""
    return f"connections:{{{member}}}"


def hidden(member: str) -> str:
    """Set: members hidden from ``member`` by a block, in either direction."""
    return f"hidden:{{{member}}}"


def follow_version(follower: str, followee: str) -> str:
    """String: the version of the last follows event applied to the edge ``follower`` → ``followee``."""
    return f"follow-version:{{{follower}|{followee}}}"


def pair_version(a: str, b: str) -> str:
    """String: the version of the last connections event applied to the pair (either order)."""
    first, second = sorted((a, b))
    return f"pair-version:{{{first}|{second}}}"


def disconnections(member: str) -> str:
    """Sorted set: members whose connection with ``member`` ended (removed or blocked) and was
    not made again, scored by when the replica learnt it (ms); the newest
    ``DISCONNECTED_MAX`` are kept. A connections-only post names them with their pair versions."""
    return f"disconnections:{{{member}}}"


# Sorted set: authors above the fan-out threshold, scored by their follower count. Small,
# and read with ZINTER against one member's following set.
HIGH_FOLLOWER_AUTHORS = "high-follower-authors"

# --- timelines (cache) ----------------------------------------------------------------

TIMELINE_PREFIX, TIMELINE_SUFFIX = "timeline:{", "}"  # FAN_OUT builds the same keys


def timeline(member: str) -> str:
    """Sorted set in the cache: post ids of ``member``'s home feed, scored by creation time (ms).

    It holds a marker member ``LIVE`` (score +inf) from the moment it is built: fan-out only
    writes to timelines that exist, so a member whose timeline expired (inactive) or was
    lost (cache flushed) is skipped and rebuilt on their next read.
    """
    return f"{TIMELINE_PREFIX}{member}{TIMELINE_SUFFIX}"


LIVE = "~live"


def author_of(post_id: str) -> str:
    return post_id.partition("~")[0]


def stamp_of(post_id: str) -> str:
    return post_id.partition("~")[2]


# --- scripts ----------------------------------------------------------------------------

# Cache. ARGV: cap, the members joined by "\n" (never in a member id), then (score, post id)
# pairs. Writes every pair into the timeline of each member that has a live one, trimming
# to ``cap`` posts (+ the LIVE marker); returns how many timelines it wrote. The members
# travel as one string and the script builds their keys (as ``timeline()`` does): no
# per-member work on the Python side, and ZCARD both tells whether the timeline exists and
# sizes the trim, so a member costs two commands (three once their timeline is full).
# Every command touches one member's timeline. The keys are not declared, which a single
# node allows; on a Redis Cluster the caller would group the members by the node serving
# their slot and send each node its batch with the keys declared (KEYS, as cluster routing
# reads them) under ``#!lua flags=allow-cross-slot-keys``.
FAN_OUT = """
local cap = tonumber(ARGV[1]) + 1
local entries = {unpack(ARGV, 3)}
local written = 0
for member in string.gmatch(ARGV[2], '[^\\n]+') do
  local key = '""" + TIMELINE_PREFIX + """' .. member .. '""" + TIMELINE_SUFFIX + """'
  local n = redis.call('ZCARD', key)
  if n > 0 then
    n = n + redis.call('ZADD', key, unpack(entries))
    if n > cap then
      redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
    end
    written = written + 1
  end
end
return written
"""

# Cache. KEYS[1]: one timeline. ARGV: cap, ttl ms, then (score, post id) pairs. Creates the
# timeline (with its LIVE marker) if missing, adds the pairs, trims, and sets its expiry.
BUILD = """
redis.call('ZADD', KEYS[1], 'inf', ARGV[3])
for j = 4, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[j], ARGV[j + 1])
end
local cap = tonumber(ARGV[1])
if redis.call('ZCARD', KEYS[1]) > cap + 1 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(cap + 2))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# Cache. KEYS[1]: one timeline. ARGV: ttl ms ('' to leave the expiry alone), max score, count.
# A window of a feed read in one command: the ``count`` newest entries up to the max score,
# flat (post id, score); pushes the expiry back first when asked (reading keeps a member
# active). Returns false when the timeline does not exist (to be rebuilt).
TIMELINE_WINDOW = """
if ARGV[1] ~= '' then
  if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return false end
end
return redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], '-inf', 'WITHSCORES', 'LIMIT', 0, ARGV[3])
"""

# Store. KEYS: post, likers, outbox. ARGV: member, +1|-1, then the outbox entry's fields.
# Like (or unlike) once: the counter and the event move only when the set changed.
LIKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local changed
if ARGV[2] == '1' then
  changed = redis.call('SADD', KEYS[2], ARGV[1])
else
  changed = redis.call('SREM', KEYS[2], ARGV[1])
end
if changed == 1 then
  redis.call('HINCRBY', KEYS[1], 'likes', tonumber(ARGV[2]))
  redis.call('XADD', KEYS[3], '*', unpack(ARGV, 3))
end
return changed
"""

# Store. KEYS: connections, hidden, following (of the reader), then each post's hash and likers.
# ARGV: reader, then each post's author. One reply for a whole page: per post its fields
# (see POST_FIELDS), whether the reader likes it, is connected to / hidden from / follows
# its author. The store is one primary (not a cluster), so a script may span authors.
POST_FIELDS = ("created_ms", "text", "visibility", "reshare_of", "likes", "comments", "reshares")
HYDRATE = """
local n = #ARGV - 1
local out = {}
for i = 1, n do
  local author = ARGV[i + 1]
  local fields = redis.call('HMGET', KEYS[3 + i], 'created_ms', 'text', 'visibility', 'reshare_of', 'likes',
                            'comments', 'reshares')
  for _, v in ipairs({1, 2, 3, 4, 5, 6, 7}) do out[#out + 1] = fields[v] end
  out[#out + 1] = redis.call('SISMEMBER', KEYS[3 + n + i], ARGV[1])
  out[#out + 1] = redis.call('SISMEMBER', KEYS[1], author)
  out[#out + 1] = redis.call('SISMEMBER', KEYS[2], author)
  out[#out + 1] = redis.call('ZSCORE', KEYS[3], author) and 1 or 0
end
return out
"""

# Store. KEYS: connections, hidden, following (of the reader), HIGH_FOLLOWER_AUTHORS.
# ARGV: reader, the window's max score, its size, the post ids the timeline gave joined by
# "\n" (one argument to pack, not one per post).
# One round trip for a window of the home feed: the high-follower authors the reader
# follows and each one's ``size`` newest posts up to the max score (merged at read time),
# then every post of the window hydrated as HYDRATE does. Replies {sources, rows}:
# ``sources`` per high-follower author a flat (post id, score) list, ``rows`` per post
# (the timeline's, then the authors' in order) HYDRATE's 11 values. Post keys are built
# here as ``post()``/``likers()``/``posts()`` build them; the store is one primary.
FEED_WINDOW = """
local reader, max_score, size = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids = {}
for id in string.gmatch(ARGV[4], '[^\\n]+') do ids[#ids + 1] = id end
local sources = {}
for _, author in ipairs(redis.call('ZINTER', 2, KEYS[3], KEYS[4])) do
  local recent = redis.call('ZREVRANGEBYSCORE', 'posts:{' .. author .. '}', max_score, '-inf',
                            'WITHSCORES', 'LIMIT', 0, size)
  for j = 1, #recent, 2 do ids[#ids + 1] = recent[j] end
  sources[#sources + 1] = recent
end
local rows = {}
local known = {}  -- author → the reader's relationship to them: a page holds few authors
for _, id in ipairs(ids) do
  local author, stamp = string.match(id, '^(.-)~(.*)$')
  local tag = '{' .. author .. '}:' .. stamp
  local fields = redis.call('HMGET', 'post:' .. tag, 'created_ms', 'text', 'visibility', 'reshare_of', 'likes',
                            'comments', 'reshares')
  for v = 1, 7 do rows[#rows + 1] = fields[v] end
  rows[#rows + 1] = redis.call('SISMEMBER', 'likers:' .. tag, reader)
  local rel = known[author]
  if rel == nil then
    rel = {redis.call('SISMEMBER', KEYS[1], author), redis.call('SISMEMBER', KEYS[2], author),
           redis.call('ZSCORE', KEYS[3], author) and 1 or 0}
    known[author] = rel
  end
  rows[#rows + 1] = rel[1]
  rows[#rows + 1] = rel[2]
  rows[#rows + 1] = rel[3]
end
return {sources, rows}
"""
