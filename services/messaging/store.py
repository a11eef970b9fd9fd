"""Every Redis key of the messaging service, and its Lua scripts; nothing else touches them.

Every key starts with ``messaging:`` and carries its aggregate's shard tag (``shared.slots``),
so each command and script touches one hash slot, on one node as on a Redis Cluster:

A conversation's record, in the conversation's shard ``tag(conversation_id)``, beside the
outbox stream its writes append to (``Outbox.key_for(tag)``):

- ``messaging:{s7}:conversation:<id>``  hash: ``kind`` (direct | group), ``participants`` (a JSON
  list, fixed at creation), ``created_at``, ``last_seq`` (its messages are numbered 1, 2, 3...),
  ``version`` (every change: messages and read receipts), ``last_sender``, ``last_excerpt``,
  ``last_at``, and per participant ``read:<member>`` (the seq read up to, only forward) and
  ``unread:<member>`` (how many of the others' messages follow it)
- ``messaging:{s7}:messages:<id>``      hash: seq → ``{"sender", "text", "sent_at"}`` (JSON)
- ``messaging:{s7}:request:<id>:<member>:<digest>``  string: the seq a send with one
  Idempotency-Key stored, for a day (a retry after a lost answer is not stored twice)

Each member's list of conversations, in the member's shard ``tag(member)``: projections the
worker applies from messaging.events, each entry only when the event's conversation version is
newer than the one stored beside it:

- ``messaging:{s9}:inbox:<m>``     sorted set: visible conversations by last activity (ms)
- ``messaging:{s9}:entries:<m>``   hash: conversation → ``<version>|<hidden up to version>``
- ``messaging:{s9}:unread:<m>``    set: conversations holding messages the member has not read
- ``messaging:{s9}:closed:<m>``    string: the member's account is closed (their list is gone)
- ``messaging:{s9}:live:<m>``      stream (capped): new messages and read receipts, for SSE;
  ``live-streams:<m>`` and ``live-beats:<m>`` count the member's open streams (shared/live.py)
- ``messaging:{s3}:stream-ticket:<t>``  string: the member a stream ticket opens the stream of

The replica of connections.events, in the pair's shard ``tag(pair(a, b))``:

- ``messaging:{s5}:pair:<a|b>``    hash: ``version`` (the pair's, from connections.events),
  ``connected`` (1 | 0), ``blocked:<member>`` (1 while ``member`` blocks the other)

Pub/sub channels are not keys: ``messaging:live-bell:<m>`` rings a member's open streams.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import redis

from shared.live import LiveKeys
from shared.lua import LuaScript
from shared.slots import DEFAULT_SHARDS, check_one_slot, pair, tag

# Entries a member's live stream keeps: a client that reconnects with an older Last-Event-ID
# reads the rest in the lists.
LIVE_CAP = 1_000


class Keys:
    """The key builders, for a deployment's number of shards (``settings.shards``)."""

    def __init__(self, shards: int = DEFAULT_SHARDS):
        self.shards = shards
        self.live = LiveKeys(stream=self.live_stream, streams=self.live_streams, beats=self.live_beats,
                             bell=bell, bell_member=bell_member, ticket=self.stream_ticket)

    def tag(self, aggregate: str) -> str:
        return tag(aggregate, self.shards)

    # --- a conversation (its shard) ---------------------------------------------------

    def conversation(self, conversation_id: str) -> str:
        return f"messaging:{self.tag(conversation_id)}:conversation:{conversation_id}"

    def messages(self, conversation_id: str) -> str:
        return f"messaging:{self.tag(conversation_id)}:messages:{conversation_id}"

    def request(self, conversation_id: str, member: str, idempotency_key: str) -> str:
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        return f"messaging:{self.tag(conversation_id)}:request:{conversation_id}:{member}:{digest}"

    # --- a member's list (their shard) ------------------------------------------------

    def inbox(self, member: str) -> str:
        return f"messaging:{self.tag(member)}:inbox:{member}"

    def entries(self, member: str) -> str:
        return f"messaging:{self.tag(member)}:entries:{member}"

    def unread(self, member: str) -> str:
        return f"messaging:{self.tag(member)}:unread:{member}"

    def closed(self, member: str) -> str:
        return f"messaging:{self.tag(member)}:closed:{member}"

    def live_stream(self, member: str) -> str:
        return f"messaging:{self.tag(member)}:live:{member}"

    def live_streams(self, member: str) -> str:
        return f"messaging:{self.tag(member)}:live-streams:{member}"

    def live_beats(self, member: str) -> str:
        return f"messaging:{self.tag(member)}:live-beats:{member}"

    def stream_ticket(self, ticket: str) -> str:
        return f"messaging:{self.tag(ticket)}:stream-ticket:{ticket}"

    # --- the replica of connections (the pair's shard) -------------------------------

    def pair(self, a: str, b: str) -> str:
        p = pair(a, b)
        return f"messaging:{self.tag(p)}:pair:{p}"

    def pairs(self, member: str) -> str:
        """Set (footprint, the member's shard): every other member a pair record of ``member``
        names, added by the consumer with the record, so a closed account's records are found
        without a SCAN."""
        return f"messaging:{self.tag(member)}:pairs:{member}"


def bell(member: str) -> str:
    """Pub/sub channel: rung when ``member``'s live stream grows or one of their streams must close."""
    return f"messaging:live-bell:{member}"


def bell_member(channel: str) -> str:
    return channel[len("messaging:live-bell:"):]


# Lua: ``stamp(entry, values)`` is one outbox entry's field/value list with each placeholder
# ``"<name>":0`` of its JSON value replaced by ``values[name]`` (the conversation's version, the
# message's seq...): the event is built before the script numbers the change. Inside a JSON
# string a quote is escaped, so the pattern only meets the event's own fields.
_STAMP = """
local function stamp(entry, values)
  local out = {}
  for i = 1, #entry do out[i] = entry[i] end
  for i = 1, #out - 1, 2 do
    if out[i] == 'value' then
      for name, n in pairs(values) do
        out[i + 1] = (string.gsub(out[i + 1], '"' .. name .. '":0([,}])', '"' .. name .. '":' .. n .. '%1', 1))
      end
    end
  end
  return out
end
local function member_of(participants, member)
  for _, m in ipairs(cjson.decode(participants)) do
    if m == member then return true end
  end
  return false
end
"""

# Appends a message (starting the conversation when ``create`` is 1 and it does not exist yet),
# numbers it, moves the sender's receipt to it, counts it unread for the others, and writes
# ``message.sent`` to the outbox: one step. With a request key (``request_ttl`` > 0) a second
# send of one Idempotency-Key returns the first one's seq instead. A new message wakes the
# service's idle relays on the channel ``wake`` (``Outbox.wake``; a channel, not a key): its
# recipients wait for it on their streams.
# Replies: {outcome, seq, participants}; outcome created | sent | duplicate | not_found | not_participant.
SEND = LuaScript("send", keys=("conversation", "messages", "request", "outbox"),
                 args=("sender", "kind", "participants", "text", "excerpt", "now", "request_ttl", "create",
                       "wake", "*event"), source=_STAMP + """
local existing = redis.call('HGET', K.conversation, 'participants')
if A.request_ttl ~= '0' then
  local seq = redis.call('GET', K.request)
  if seq then return {'duplicate', tonumber(seq), existing or ''} end
end
local outcome = 'sent'
if existing then
  if not member_of(existing, A.sender) then return {'not_participant', 0, ''} end
else
  if A.create ~= '1' then return {'not_found', 0, ''} end
  existing = A.participants
  redis.call('HSET', K.conversation, 'kind', A.kind, 'participants', existing, 'created_at', A.now)
  outcome = 'created'
end
local seq = redis.call('HINCRBY', K.conversation, 'last_seq', 1)
local version = redis.call('HINCRBY', K.conversation, 'version', 1)
redis.call('HSET', K.messages, seq, cjson.encode({sender = A.sender, text = A.text, sent_at = A.now}))
for _, m in ipairs(cjson.decode(existing)) do
  if m ~= A.sender then redis.call('HINCRBY', K.conversation, 'unread:' .. m, 1) end
end
redis.call('HSET', K.conversation, 'read:' .. A.sender, seq, 'unread:' .. A.sender, 0,
           'last_sender', A.sender, 'last_excerpt', A.excerpt, 'last_at', A.now)
if A.request_ttl ~= '0' then redis.call('SET', K.request, seq, 'EX', A.request_ttl) end
redis.call('XADD', K.outbox, '*', unpack(stamp(A.event, {version = version, seq = seq})))
if A.wake ~= '' then redis.call('PUBLISH', A.wake, '1') end
return {outcome, seq, existing}
""")

# Moves ``member``'s read receipt forward to ``up_to`` (a seq; '' = the newest message), counts
# the others' messages after it, and writes ``conversation.read``. A receipt never moves back.
# Replies: {outcome, read_up_to, unread}; outcome read | unchanged | not_found | no_such_message.
READ = LuaScript("read", keys=("conversation", "messages", "outbox"), args=("member", "up_to", "*event"),
                 source=_STAMP + """
local participants = redis.call('HGET', K.conversation, 'participants')
if not participants or not member_of(participants, A.member) then return {'not_found', 0, 0} end
local last = tonumber(redis.call('HGET', K.conversation, 'last_seq'))
local up_to = last
if A.up_to ~= '' then up_to = tonumber(A.up_to) end
if up_to < 1 or up_to > last then return {'no_such_message', 0, 0} end
local current = tonumber(redis.call('HGET', K.conversation, 'read:' .. A.member) or '0')
if up_to <= current then
  return {'unchanged', current, tonumber(redis.call('HGET', K.conversation, 'unread:' .. A.member) or '0')}
end
local unread = 0
local from = up_to + 1
while from <= last do
  local upto = math.min(from + 499, last)
  local seqs = {}
  for s = from, upto do seqs[#seqs + 1] = s end
  for _, raw in ipairs(redis.call('HMGET', K.messages, unpack(seqs))) do
    if raw and cjson.decode(raw)['sender'] ~= A.member then unread = unread + 1 end
  end
  from = upto + 1
end
redis.call('HSET', K.conversation, 'read:' .. A.member, up_to, 'unread:' .. A.member, unread)
local version = redis.call('HINCRBY', K.conversation, 'version', 1)
redis.call('XADD', K.outbox, '*', unpack(stamp(A.event, {version = version, up_to = up_to, unread_count = unread})))
return {'read', up_to, unread}
""")

# Applies one conversation event to one participant's list, when its version is newer than the
# entry's: a message (kind 'message') moves the conversation up (and back into view when it was
# hidden up to an older version); ``unread`` 1 / 0 marks it unread or read ('' leaves it); the
# event goes onto the member's live stream and rings their bell. A closed account gets nothing.
# Replies: applied | stale | closed.
PROJECT = LuaScript("project", keys=("entries", "inbox", "unread", "live", "closed"),
                    args=("conversation_id", "version", "kind", "score", "unread", "live_cap", "bell", "*entry"),
                    source="""
if redis.call('EXISTS', K.closed) == 1 then return 'closed' end
local held, hidden = 0, 0
local entry = redis.call('HGET', K.entries, A.conversation_id)
if entry then
  local v, h = string.match(entry, '^(%d+)|(%d+)$')
  held, hidden = tonumber(v), tonumber(h)
end
local version = tonumber(A.version)
if version <= held then return 'stale' end
redis.call('HSET', K.entries, A.conversation_id, version .. '|' .. hidden)
local shown = version > hidden
if A.kind == 'message' and shown then
  redis.call('ZADD', K.inbox, A.score, A.conversation_id)
end
if A.unread == '0' then
  redis.call('SREM', K.unread, A.conversation_id)
elseif A.unread == '1' and shown and redis.call('ZSCORE', K.inbox, A.conversation_id) then
  redis.call('SADD', K.unread, A.conversation_id)
end
redis.call('XADD', K.live, 'MAXLEN', '~', A.live_cap, '*', unpack(A.entry))
redis.call('PUBLISH', A.bell, 'new')
return 'applied'
""")

# Hides a conversation from one member's list up to ``version`` (the conversation's version when
# they asked): a later message brings it back. Replies 1.
HIDE = LuaScript("hide", keys=("entries", "inbox", "unread"), args=("conversation_id", "version"), source="""
local held, hidden = 0, 0
local entry = redis.call('HGET', K.entries, A.conversation_id)
if entry then
  local v, h = string.match(entry, '^(%d+)|(%d+)$')
  held, hidden = tonumber(v), tonumber(h)
end
local version = math.max(tonumber(A.version), hidden, held)
redis.call('HSET', K.entries, A.conversation_id, held .. '|' .. version)
redis.call('ZREM', K.inbox, A.conversation_id)
redis.call('SREM', K.unread, A.conversation_id)
return 1
""")

# A closed account: its list, unread markers and live stream go, and no later event recreates
# them (PROJECT checks the mark). Replies 1 when applied, 0 when already closed.
CLOSE_MEMBER = LuaScript("close_member", keys=("closed", "entries", "inbox", "unread", "live"),
                         args=("version",), source="""
if redis.call('EXISTS', K.closed) == 1 then return 0 end
redis.call('SET', K.closed, A.version)
redis.call('DEL', K.entries, K.inbox, K.unread, K.live)
return 1
""")

# The replica of one member pair, from connections.events: applied only when the event's version
# is newer than the pair's. ``connected`` 1 / 0 ('' leaves it); ``blocker`` with ``block`` 1 / 0
# starts or ends that member's block. Replies 1 when applied, 0 when stale.
PAIR = LuaScript("pair", keys=("pair",), args=("version", "connected", "blocker", "block"), source="""
if tonumber(A.version) <= tonumber(redis.call('HGET', K.pair, 'version') or '0') then return 0 end
redis.call('HSET', K.pair, 'version', A.version)
if A.connected ~= '' then redis.call('HSET', K.pair, 'connected', A.connected) end
if A.blocker ~= '' then
  if A.block == '1' then
    redis.call('HSET', K.pair, 'blocked:' .. A.blocker, 1)
  else
    redis.call('HDEL', K.pair, 'blocked:' .. A.blocker)
  end
end
return 1
""")


def with_outbox(script: LuaScript, client: redis.Redis, *, keys: Mapping[str, str], **args: Any) -> Any:
    """Run a conversation's script, whose key ``outbox`` is the outbox stream of its shard.

    Where the bus gives each shard its own stream (``Outbox.key_for`` names one with the shard's
    tag) this is the script's ordinary call, every key checked for one slot. Where it still gives
    every write the service's one stream (no tag: a single Redis node), that one key is left out
    of the check; every other key still is."""
    if "{" in keys["outbox"]:
        return script(client, keys=keys, **args)
    key_list, arg_list = script.pack(keys, args)
    check_one_slot([k for name, k in keys.items() if name != "outbox"], f"script {script.name}")
    try:
        return client.evalsha(script.sha, len(key_list), *key_list, *arg_list)
    except redis.exceptions.NoScriptError:
        return client.eval(script.source, len(key_list), *key_list, *arg_list)
