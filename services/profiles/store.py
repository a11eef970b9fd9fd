"""Every Redis key of the profiles service, and its Lua scripts; nothing else touches them.

Every key starts with ``profiles:`` and carries the shard tag of its aggregate
(``shared.slots``): a member's keys ``profiles:{s17}:member:ada`` (the member's shard), a
recommendation's record the shard of its recipient (its id is drawn to fall there, see
``recommendations.new_id``), a search-index entry the shard of its name prefix. Each script
touches one slot, all its keys passed in KEYS (``shared.lua.LuaScript`` refuses anything else).
"""
from __future__ import annotations

from shared.lua import LuaScript
from shared.slots import tag


class Keys:
    """The key names, for a deployment's number of shards (``RAPPORT_SHARDS``)."""

    def __init__(self, shards: int):
        self.shards = shards

    def tag(self, value: str) -> str:
        return tag(value, self.shards)

    def _k(self, member: str, what: str) -> str:
        return f"profiles:{self.tag(member)}:{what}:{member}"

    # --- the authoritative record of a member ---------------------------------------------

    def member(self, member: str) -> str:
        """Hash: ``status`` (active | closed), ``version`` (the member's change counter, numbered
        with each change and its event), ``doc`` (the profile, JSON), ``visibility``,
        ``registered_at``, ``updated_at``; after closing only ``status``, ``version``, ``closed_at``
        (the tombstone)."""
        return self._k(member, "member")

    # --- replicas of connections.events, in the member's shard -----------------------------

    def connections(self, member: str) -> str:
        """Set: the member's 1st-degree connections."""
        return self._k(member, "connections")

    def connection_names(self, member: str) -> str:
        """Hash: connection → their search entry (folded name), so a search puts the caller's
        connections first with one read of the caller's shard."""
        return self._k(member, "connection-names")

    def blocks(self, member: str) -> str:
        """Set: the members this member blocked."""
        return self._k(member, "blocks")

    def blocked_by(self, member: str) -> str:
        """Set: the members who blocked this member."""
        return self._k(member, "blocked-by")

    def pair_versions(self, member: str) -> str:
        """Hash: other member → the version of the last pair change applied to this member's side."""
        return self._k(member, "pair-versions")

    def endorsers(self, member: str, skill_key: str) -> str:
        """Set: who endorsed ``member`` for the skill (case-folded ``skill_key``)."""
        return f"profiles:{self.tag(member)}:endorsers:{member}:{skill_key}"

    def endorsement_counts(self, member: str) -> str:
        """Hash: skill key → how many endorsed ``member`` for it."""
        return self._k(member, "endorsement-counts")

    def endorsed(self, endorser: str) -> str:
        """Set of ``<endorsee>\\t<skill key>``: whom ``endorser`` endorsed (to erase it when they close)."""
        return self._k(endorser, "endorsed")

    # --- recommendations --------------------------------------------------------------------

    def recommendation(self, recommendation_id: str) -> str:
        """Hash: one recommendation. Its id falls in its recipient's shard."""
        return f"profiles:{self.tag(recommendation_id)}:recommendation:{recommendation_id}"

    def received(self, member: str) -> str:
        """Sorted set: ids of the recommendations written to ``member``, by when (ms)."""
        return self._k(member, "recommendations-received")

    def accepted(self, member: str) -> str:
        """Sorted set: ids of the recommendations ``member`` accepted, by when written (the full view's)."""
        return self._k(member, "recommendations-accepted")

    def given(self, member: str) -> str:
        """Sorted set: ids of the recommendations ``member`` wrote, by when (a projection the
        worker keeps from ``recommendation.written``)."""
        return self._k(member, "recommendations-given")

    # --- the search index ---------------------------------------------------------------------

    def names(self, prefix: str) -> str:
        """Sorted set (all scores 0, ordered by lex): ``<folded name>\\x00<member>`` of every member
        with a name word starting with ``prefix``; in the prefix's own shard."""
        return f"profiles:{self.tag(prefix)}:names:{prefix}"

    def indexed(self, member: str) -> str:
        """Hash: the ``version`` and folded ``name`` the search index holds for ``member`` (the
        worker's, to take the old prefixes out when the name changes)."""
        return self._k(member, "indexed")


# Lua: the outbox entry of a versioned event, its placeholder version replaced by ``v``. The
# pattern can only match the key: inside a JSON string a quote is escaped.
_STAMP = """
local function stamp(value, v)
  return (string.gsub(value, '"version":0([,}])', '"version":' .. v .. '%1', 1))
end
"""

# PUT (mode put) and PATCH (mode patch, only when the version read is still the one stored):
# the profile, the member's next version and its event at once. ``announce`` 0: a PATCH that
# changed neither name nor headline, which no other service mirrors, emits nothing.
SAVE_PROFILE = LuaScript("save_profile", keys=("member", "outbox"), args=(
    "mode", "expected", "doc", "name", "headline", "now", "announce", "topic", "event_key", "registered", "updated"),
    source=_STAMP + """
local status = redis.call('HGET', K.member, 'status')
if status == 'closed' then return {'closed', 0} end
if A.mode == 'patch' then
  if not status then return {'unregistered', 0} end
  if (redis.call('HGET', K.member, 'version') or '0') ~= A.expected then return {'retry', 0} end
end
local v = redis.call('HINCRBY', K.member, 'version', 1)
local outcome, value = 'replaced', A.updated
if not status then
  outcome, value = 'created', A.registered
  redis.call('HSET', K.member, 'registered_at', A.now, 'visibility', 'everyone')
end
redis.call('HSET', K.member, 'status', 'active', 'doc', A.doc, 'name', A.name, 'headline', A.headline,
           'updated_at', A.now)
if outcome == 'created' or A.announce == '1' then
  redis.call('XADD', K.outbox, '*', 'topic', A.topic, 'key', A.event_key, 'value', stamp(value, v))
end
return {outcome, v}
""")

# PATCH /v1/settings: emits member.settings_changed only on a change.
SET_VISIBILITY = LuaScript("set_visibility", keys=("member", "outbox"), args=(
    "visibility", "topic", "event_key", "event"), source=_STAMP + """
local status = redis.call('HGET', K.member, 'status')
if not status then return {'unregistered', 0} end
if status == 'closed' then return {'closed', 0} end
if redis.call('HGET', K.member, 'visibility') == A.visibility then return {'same', 0} end
local v = redis.call('HINCRBY', K.member, 'version', 1)
redis.call('HSET', K.member, 'visibility', A.visibility)
redis.call('XADD', K.outbox, '*', 'topic', A.topic, 'key', A.event_key, 'value', stamp(A.event, v))
return {'changed', v}
""")

# DELETE /v1/profile: the record becomes its tombstone (status, version, closed_at) with
# member.closed; the worker erases the rest on that event.
CLOSE = LuaScript("close", keys=("member", "outbox"), args=("now", "topic", "event_key", "event"), source=_STAMP + """
local status = redis.call('HGET', K.member, 'status')
if not status then return {'unregistered', 0} end
if status == 'closed' then return {'already', 0} end
local v = redis.call('HINCRBY', K.member, 'version', 1)
redis.call('DEL', K.member)
redis.call('HSET', K.member, 'status', 'closed', 'version', v, 'closed_at', A.now)
redis.call('XADD', K.outbox, '*', 'topic', A.topic, 'key', A.event_key, 'value', stamp(A.event, v))
return {'closed', v}
""")

# One side of a pair change from connections.events, applied only when its version is newer
# than the last applied to this side, and never to a closed member's side.
PROJECT_PAIR = LuaScript("project_pair", keys=("member", "versions", "connections", "names", "blocks", "blocked_by"),
                         args=("other", "version", "change", "entry"), source="""
if redis.call('HGET', K.member, 'status') == 'closed' then return 'closed' end
local last = tonumber(redis.call('HGET', K.versions, A.other) or '0')
if tonumber(A.version) <= last then return 'stale' end
redis.call('HSET', K.versions, A.other, A.version)
local c = A.change
if c == 'connected' then
  redis.call('SADD', K.connections, A.other)
  if A.entry ~= '' then redis.call('HSET', K.names, A.other, A.entry) end
elseif c == 'disconnected' then redis.call('SREM', K.connections, A.other); redis.call('HDEL', K.names, A.other)
elseif c == 'blocked' then
  redis.call('SADD', K.blocks, A.other); redis.call('SREM', K.connections, A.other); redis.call('HDEL', K.names, A.other)
elseif c == 'blocked_by' then
  redis.call('SADD', K.blocked_by, A.other); redis.call('SREM', K.connections, A.other)
  redis.call('HDEL', K.names, A.other)
elseif c == 'unblocked' then redis.call('SREM', K.blocks, A.other)
elseif c == 'unblocked_by' then redis.call('SREM', K.blocked_by, A.other)
else return redis.error_reply('unknown change ' .. c) end
return 'applied'
""")

# endorsement.added: counted once per endorser and skill (a repeat of the event changes nothing).
ENDORSE = LuaScript("endorse", keys=("member", "endorsers", "counts"), args=("endorser", "skill"), source="""
if redis.call('HGET', K.member, 'status') == 'closed' then return 0 end
if redis.call('SADD', K.endorsers, A.endorser) == 1 then
  redis.call('HINCRBY', K.counts, A.skill, 1)
  return 1
end
return 0
""")

# An endorser's account closed: their endorsement of this member's skill no longer counts.
UNENDORSE = LuaScript("unendorse", keys=("endorsers", "counts"), args=("endorser", "skill"), source="""
if redis.call('SREM', K.endorsers, A.endorser) == 0 then return 0 end
if redis.call('HINCRBY', K.counts, A.skill, -1) <= 0 then redis.call('HDEL', K.counts, A.skill) end
return 1
""")

# POST /v1/members/{id}/recommendations: the recipient exists, no block either way, and the
# author is their 1st-degree connection, checked with the write in the recipient's shard.
WRITE_RECOMMENDATION = LuaScript("write_recommendation", keys=(
    "recipient", "connections", "blocks", "blocked_by", "record", "received", "outbox"), args=(
    "author", "recipient_id", "id", "relationship", "text", "now", "topic", "event_key", "event"), source="""
if redis.call('HGET', K.recipient, 'status') ~= 'active' then return 'not_found' end
if redis.call('SISMEMBER', K.blocks, A.author) == 1 or redis.call('SISMEMBER', K.blocked_by, A.author) == 1 then
  return 'not_found'
end
if redis.call('SISMEMBER', K.connections, A.author) == 0 then return 'not_connected' end
if redis.call('EXISTS', K.record) == 1 then return 'exists' end
redis.call('HSET', K.record, 'author', A.author, 'recipient', A.recipient_id, 'relationship', A.relationship,
           'text', A.text, 'status', 'pending', 'written_at', A.now)
redis.call('ZADD', K.received, A.now, A.id)
redis.call('XADD', K.outbox, '*', 'topic', A.topic, 'key', A.event_key, 'value', A.event)
return 'written'
""")

# accept / hide, by the recipient only; an event only when the status changes.
DECIDE_RECOMMENDATION = LuaScript("decide_recommendation", keys=("record", "received", "accepted", "outbox"), args=(
    "id", "status", "now", "topic", "event_key", "event"), source="""
if redis.call('ZSCORE', K.received, A.id) == false or redis.call('EXISTS', K.record) == 0 then
  return 'not_found'
end
if redis.call('HGET', K.record, 'status') == A.status then return 'same' end
redis.call('HSET', K.record, 'status', A.status, 'decided_at', A.now)
if A.status == 'accepted' then
  redis.call('ZADD', K.accepted, redis.call('HGET', K.record, 'written_at'), A.id)
else
  redis.call('ZREM', K.accepted, A.id)
end
redis.call('XADD', K.outbox, '*', 'topic', A.topic, 'key', A.event_key, 'value', A.event)
return 'decided'
""")

# A recommendation erased with its author's or recipient's account.
ERASE_RECOMMENDATION = LuaScript("erase_recommendation", keys=("record", "received", "accepted"), args=("id",),
                                 source="""
redis.call('ZREM', K.received, A.id)
redis.call('ZREM', K.accepted, A.id)
return redis.call('DEL', K.record)
""")

# The worker's index of one member's name, only for a version newer than the one indexed.
MARK_INDEXED = LuaScript("mark_indexed", keys=("indexed",), args=("version", "name"), source="""
local last = tonumber(redis.call('HGET', K.indexed, 'version') or '0')
if tonumber(A.version) <= last then return 0 end
redis.call('HSET', K.indexed, 'version', A.version, 'name', A.name)
return 1
""")


def load_member(pipe, keys: Keys, member: str, doc_json: str, name: str, headline: str, at_ms: int,
                version: int = 1) -> None:
    """Queue on ``pipe`` a registered member's record as ``SAVE_PROFILE`` would leave it, without
    its event (bulk loading for benchmarks; each command one key)."""
    pipe.hset(keys.member(member), mapping={"status": "active", "version": version, "doc": doc_json, "name": name,
                                             "headline": headline, "visibility": "everyone",
                                             "registered_at": at_ms, "updated_at": at_ms})
