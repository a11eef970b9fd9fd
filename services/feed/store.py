"""Every Redis key of the feed service, and its Lua scripts; nothing else builds them.

Two Redis servers (or one Redis Cluster serving both):

- the **store** (system of record): posts, likes, comments, the audience replica;
- the **cache**: one timeline per member, rebuildable from the store at any time.

Every key starts with ``feed:`` and carries its aggregate's shard tag (``shared.slots``):

- a member's keys (posts lists, the audience replica, the timeline): ``tag(member)``;
- a post's keys (hash, likers, comments): the post's shard, which is its **author's** shard.
  A post id is ``<author>~<stamp>`` (``~`` is never in a member id) and its shard is keyed on
  the author part, so a post and its author's posts lists share a slot: creating or deleting
  a post is one script with its outbox entry, and a timeline entry tells who wrote it
  without a lookup.

Each script touches the keys of one slot, all passed in KEYS (``shared.lua``).
"""
from __future__ import annotations

import zlib

import redis

from shared import slots
from shared.lua import LuaScript

# The shard count of this process (``Settings.shards``), set once at start-up by the app
# factory and the worker (``use_shards``).
_shards = slots.DEFAULT_SHARDS


def use_shards(shards: int) -> None:
    global _shards
    _shards = shards


def shard(member: str) -> str:
    """The hash tag of ``member``'s shard: of their keys, their posts' keys and their timeline."""
    return slots.tag(member, _shards)


def author_of(post_id: str) -> str:
    return post_id.partition("~")[0]


def stamp_of(post_id: str) -> str:
    return post_id.partition("~")[2]


def post_shard(post_id: str) -> str:
    """The shard of a post: its author's."""
    return shard(author_of(post_id))


def _member_key(name: str, member: str) -> str:
    return f"feed:{shard(member)}:{name}:{member}"


def _post_key(name: str, post_id: str) -> str:
    return f"feed:{post_shard(post_id)}:{name}:{post_id}"


# --- posts (store), in the author's shard ----------------------------------------------


def post(post_id: str) -> str:
    """Hash: one post's fields and its like/comment/reshare counters."""
    return _post_key("post", post_id)


def likers(post_id: str) -> str:
    """Set: who likes the post (what "liked by me" reads: the like's authoritative record)."""
    return _post_key("likers", post_id)


def comments(post_id: str) -> str:
    """Sorted set: the post's comment ids, scored by when (ms)."""
    return _post_key("comments", post_id)


def comment_bodies(post_id: str) -> str:
    """Hash: comment id → the comment as JSON."""
    return _post_key("comment-bodies", post_id)


def resharers(post_id: str) -> str:
    """Set: the reshares of the post (their post ids): its ``reshares`` count moves once per reshare."""
    return _post_key("reshares", post_id)


def liked(member: str) -> str:
    """Set (footprint, ``member``'s slot): the post ids ``member`` likes, added before the like
    and removed after an unlike, so a closed account's likes are found without a SCAN. An entry
    whose post was deleted meanwhile is harmless (its erasure changes nothing)."""
    return _member_key("liked", member)


def commented(member: str) -> str:
    """Set (footprint, ``member``'s slot): ``<post id> <comment id>`` for each comment ``member``
    wrote, added before the comment, so a closed account's comments are found without a SCAN."""
    return _member_key("commented", member)


def posts(author: str) -> str:
    """Sorted set: every live post of ``author``, scored by creation time (ms)."""
    return _member_key("posts", author)


def public_posts(author: str) -> str:
    """Sorted set: the public subset of ``posts(author)``: what a non-connection may see."""
    return _member_key("public-posts", author)


# --- the audience replica (store), built from follows.events and connections.events ----
# Per member, in the member's shard. An edge or a pair has a side in each member's shard;
# each side keeps, beside its entry, the version of the last event applied to it.


def followers(member: str) -> str:
    """Sorted set: who follows ``member``, scored by since (ms)."""
    return _member_key("followers", member)


def following(member: str) -> str:
    """Sorted set: whom ``member`` follows, scored by since (ms)."""
    return _member_key("following", member)


def follow_version(follower: str, followee: str) -> str:
    """String, beside ``following(follower)``: the version of the last follows event of the edge applied there."""
    return f"feed:{shard(follower)}:following-version:{follower}|{followee}"


def follower_version(followee: str, follower: str) -> str:
    """String, beside ``followers(followee)``: the version of the last follows event of the edge applied there."""
    return f"feed:{shard(followee)}:followers-version:{followee}|{follower}"


def following_seen(member: str) -> str:
    """Set (footprint): every followee a ``follow_version(member, …)`` names, added with it by
    FOLLOW_SIDE, so a closed account's versions are found without a SCAN."""
    return _member_key("following-seen", member)


def followers_seen(member: str) -> str:
    """Set (footprint): every follower a ``follower_version(member, …)`` names (FOLLOW_SIDE)."""
    return _member_key("followers-seen", member)


def paired(member: str) -> str:
    """Set (footprint): every other member a ``pair_version(member, …)`` names (PAIR_SIDE)."""
    return _member_key("paired", member)


def connections(member: str) -> str:
    """Set: ``member``'s 1st-degree connections."""
    return _member_key("connections", member)


def hidden(member: str) -> str:
    """Set: members hidden from ``member`` by a block, in either direction."""
    return _member_key("hidden", member)


def pair_version(member: str, other: str) -> str:
    """String, in ``member``'s shard: the version of the last connections event of the pair
    applied to ``member``'s side (their connections, hidden and disconnections)."""
    return f"feed:{shard(member)}:pair-version:{member}|{other}"


def disconnections(member: str) -> str:
    """Sorted set: members whose connection with ``member`` ended (removed or blocked) and was
    not made again, scored by when the replica learnt it (ms); the newest
    ``DISCONNECTED_MAX`` are kept. A connections-only post names them with their pair versions."""
    return _member_key("disconnections", member)


def high_follower_authors(tag: str) -> str:
    """Sorted set: authors above the fan-out threshold (not fanned out, merged at read time).

    One copy in every shard: a feed read intersects it with the reader's following set in
    the reader's slot. It changes only when an author crosses the threshold, then in every copy.
    """
    return f"feed:{tag}:high-follower-authors"


def all_high_follower_authors() -> list[str]:
    return [high_follower_authors(t) for t in slots.all_tags(_shards)]


# --- timelines (cache) ----------------------------------------------------------------


def timeline(member: str) -> str:
    """Sorted set in the cache: post ids of ``member``'s home feed, scored by creation time (ms).

    It holds a marker member ``LIVE`` (score +inf) from the moment it is built: fan-out only
    writes to timelines that exist, so a member whose timeline expired (inactive) or was
    lost (cache flushed) is skipped and rebuilt on their next read.
    """
    return _member_key("timeline", member)


def timelines_by_shard(members: list[str]) -> dict[str, list[str]]:
    """The timelines of ``members`` grouped by shard tag (each group one slot), as ``timeline()``
    names them: the fan-out's hot loop, one crc32 per member."""
    grouped: dict[str, list[str]] = {}
    shards, crc32 = _shards, zlib.crc32
    for member in members:
        tag = f"{{s{crc32(member.encode()) % shards}}}"
        grouped.setdefault(tag, []).append(f"feed:{tag}:timeline:{member}")
    return grouped


LIVE = "~live"

# The fields of a post hash a read takes, in this order.
POST_FIELDS = ("created_ms", "text", "visibility", "reshare_of", "likes", "comments", "reshares")


def post_read_keys(post_id: str) -> tuple[str, str]:
    """``(post(post_id), likers(post_id))``, the post's shard computed once (a feed read's hot loop)."""
    tag = post_shard(post_id)
    return f"feed:{tag}:post:{post_id}", f"feed:{tag}:likers:{post_id}"


# --- scripts ----------------------------------------------------------------------------
# Each replies with a word saying what happened; the tests check every one.

# Store, the author's slot. A post goes with its likes, comments and list entries, and its
# post.deleted outbox entry.
DELETE_POST = LuaScript("delete_post", keys=("post", "likers", "comments", "comment_bodies", "resharers", "posts",
                                             "public_posts", "outbox"),
                        args=("post_id", "*event"), source="""
if redis.call('EXISTS', K.post) == 0 then return 'not_found' end
redis.call('DEL', K.post, K.likers, K.comments, K.comment_bodies, K.resharers)
redis.call('ZREM', K.posts, A.post_id)
redis.call('ZREM', K.public_posts, A.post_id)
redis.call('XADD', K.outbox, '*', unpack(A.event))
return 'deleted'
""")

# Store, the post's slot. Like (delta 1) or unlike (delta -1) once: the counter and the event
# move only when the likers set changed.
LIKE = LuaScript("like", keys=("post", "likers", "outbox"), args=("member", "delta", "*event"), source="""
if redis.call('EXISTS', K.post) == 0 then return 'not_found' end
local changed
if A.delta == '1' then
  changed = redis.call('SADD', K.likers, A.member)
else
  changed = redis.call('SREM', K.likers, A.member)
end
if changed == 0 then return 'unchanged' end
redis.call('HINCRBY', K.post, 'likes', tonumber(A.delta))
redis.call('XADD', K.outbox, '*', unpack(A.event))
return 'changed'
""")

# Store, the post's slot: a closed account's like goes, and the count drops only when the
# likers set changed, so a retried erasure drops it once.
ERASE_LIKE = LuaScript("erase_like", keys=("post", "likers"), args=("member",), source="""
if redis.call('SREM', K.likers, A.member) == 0 then return 'unchanged' end
if redis.call('EXISTS', K.post) == 1 then redis.call('HINCRBY', K.post, 'likes', -1) end
return 'changed'
""")

# Store, the post's slot: a closed account's comments go (ids given), each counted off once.
ERASE_COMMENTS = LuaScript("erase_comments", keys=("post", "comments", "comment_bodies"), args=("*ids",), source="""
local gone = 0
for _, id in ipairs(A.ids) do
  gone = gone + redis.call('ZREM', K.comments, id)
  redis.call('HDEL', K.comment_bodies, id)
end
if gone > 0 and redis.call('EXISTS', K.post) == 1 then redis.call('HINCRBY', K.post, 'comments', -gone) end
return gone
""")

# Store, the original post's slot. A reshare counted (delta 1) or uncounted (delta -1) once,
# by the reshare's id: the request that writes the reshare and the consumer of its
# post.created both apply it. A deleted original is not recreated.
RESHARED = LuaScript("reshared", keys=("post", "resharers"), args=("reshare_id", "delta"), source="""
if redis.call('EXISTS', K.post) == 0 then return 'not_found' end
local changed
if A.delta == '1' then
  changed = redis.call('SADD', K.resharers, A.reshare_id)
else
  changed = redis.call('SREM', K.resharers, A.reshare_id)
end
if changed == 0 then return 'unchanged' end
redis.call('HINCRBY', K.post, 'reshares', tonumber(A.delta))
return 'changed'
""")

# Store, one member's slot. One side of a follow edge: ``member`` in (present '1') or out of
# (present '0') a following or followers set, when ``version`` is newer than the one held
# beside it. Replies {word, the set's size}: 'applied'; 'current' (this version was applied
# already: a redelivery, whose follow-up effects may be redone); 'stale' (an older one).
# ``seen`` is the footprint of the versions kept beside ``edges`` (who they name).
FOLLOW_SIDE = LuaScript("follow_side", keys=("edges", "version", "seen"), args=("member", "score", "version", "present"),
                        source="""
local held = tonumber(redis.call('GET', K.version) or '0')
local version = tonumber(A.version)
if version < held then return {'stale', redis.call('ZCARD', K.edges)} end
if version == held then return {'current', redis.call('ZCARD', K.edges)} end
redis.call('SADD', K.seen, A.member)
redis.call('SET', K.version, A.version)
if A.present == '1' then
  redis.call('ZADD', K.edges, A.score, A.member)
else
  redis.call('ZREM', K.edges, A.member)
end
return {'applied', redis.call('ZCARD', K.edges)}
""")

# Store, one member's slot. One member's side of a connections event about ``other``, when
# ``version`` is newer than the one held beside it: 'connect', 'disconnect' (removed),
# 'block' (disconnected and hidden) or 'unblock'. An ended connection is remembered in
# ``disconnections`` (the newest ``keep``). Replies 'applied', 'current' or 'stale' (as FOLLOW_SIDE).
# ``paired`` is the footprint of the pair versions kept in the member's slot (who they name).
PAIR_SIDE = LuaScript("pair_side", keys=("connections", "hidden", "disconnections", "version", "paired"),
                      args=("other", "change", "version", "at", "keep"), source="""
local held = tonumber(redis.call('GET', K.version) or '0')
local version = tonumber(A.version)
if version < held then return 'stale' end
if version == held then return 'current' end
redis.call('SADD', K.paired, A.other)
redis.call('SET', K.version, A.version)
if A.change == 'connect' then
  redis.call('SADD', K.connections, A.other)
  redis.call('ZREM', K.disconnections, A.other)
elseif A.change == 'disconnect' or A.change == 'block' then
  if A.change == 'block' then redis.call('SADD', K.hidden, A.other) end
  redis.call('SREM', K.connections, A.other)
  redis.call('ZADD', K.disconnections, A.at, A.other)
  redis.call('ZREMRANGEBYRANK', K.disconnections, 0, -(tonumber(A.keep) + 1))
elseif A.change == 'unblock' then
  redis.call('SREM', K.hidden, A.other)
else
  return redis.error_reply('unknown change ' .. A.change)
end
return 'applied'
""")

# Cache, the timelines of one slot. Writes the (score, post id) entries into each timeline
# that exists (a live one), trimming to ``cap`` posts (+ the LIVE marker); replies how many
# timelines it wrote. ZCARD both tells whether the timeline exists and sizes the trim, so a
# member costs two commands (three once their timeline is full). Each entry is a ZADD of the
# post id with its score: writing a batch twice changes nothing.
FAN_OUT = LuaScript("fan_out", keys=("*timelines",), args=("cap", "*entries"), source="""
local cap = tonumber(A.cap) + 1
local written = 0
for _, key in ipairs(K.timelines) do
  local n = redis.call('ZCARD', key)
  if n > 0 then
    n = n + redis.call('ZADD', key, unpack(A.entries))
    if n > cap then
      redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1))
    end
    written = written + 1
  end
end
return written
""")

# Cache, one timeline. Creates it (with its LIVE marker) if missing, adds the (score, post id)
# entries, trims to ``cap`` posts and sets its expiry. Replies 'built'.
BUILD = LuaScript("build", keys=("timeline",), args=("cap", "ttl_ms", "live", "*entries"), source="""
redis.call('ZADD', K.timeline, 'inf', A.live)
for j = 1, #A.entries, 2 do
  redis.call('ZADD', K.timeline, A.entries[j], A.entries[j + 1])
end
local cap = tonumber(A.cap)
if redis.call('ZCARD', K.timeline) > cap + 1 then
  redis.call('ZREMRANGEBYRANK', K.timeline, 0, -(cap + 2))
end
redis.call('PEXPIRE', K.timeline, A.ttl_ms)
return 'built'
""")

# Cache, one timeline. A window of a feed read in one command: the ``count`` newest entries up
# to ``max_score``, flat (post id, score); pushes the expiry back first when ``ttl_ms`` is
# not '' (reading keeps a member active). Replies false when the timeline does not exist
# (to be rebuilt).
TIMELINE_WINDOW = LuaScript("timeline_window", keys=("timeline",), args=("ttl_ms", "max_score", "count"), source="""
if A.ttl_ms ~= '' then
  if redis.call('PEXPIRE', K.timeline, A.ttl_ms) == 0 then return false end
end
return redis.call('ZREVRANGEBYSCORE', K.timeline, A.max_score, '-inf', 'WITHSCORES', 'LIMIT', 0, A.count)
""")


def run(script: LuaScript, client: redis.Redis, *, keys: dict, **args):
    """``script(client, keys=keys, **args)`` for a script that appends to an outbox stream.

    While ``Outbox.key_for`` still gives the service's one stream for every shard (a key of
    no shard's slot), that key alone is left out of the one-slot check; once the outbox is a
    stream per shard, the full check applies (the key then carries the write's shard tag).
    """
    outbox = keys["outbox"]
    if "{" in outbox:
        return script(client, keys=keys, **args)
    key_list, arg_list = script.pack(keys, args)
    slots.check_one_slot([k for k in key_list if k != outbox], f"script {script.name}")
    try:
        return client.evalsha(script.sha, len(key_list), *key_list, *arg_list)
    except redis.exceptions.NoScriptError:
        return client.eval(script.source, len(key_list), *key_list, *arg_list)
