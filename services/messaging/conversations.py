"""The rules of messaging, as plain functions over the messaging store.

A conversation's record and messages live in its own shard; every change to them and its event
are one script there (``store.SEND``, ``store.READ``), numbered by the conversation's version.
The conversation of two members has an id derived from the pair, so the first message of
either starts it, once, atomically in its own slot; a group's id is fresh (or derived from the
sender's Idempotency-Key, so a retry finds the first attempt).

Who may write is read from the replica of connections.events (``network``) before the script
runs. Each member's list of conversations is a projection the worker applies from the events
(``inbox``); what a client reads of its own writes (the conversation, its messages, receipts)
comes from the conversation's record, so nobody sees their write undone; their list may lag
by milliseconds.
"""
from __future__ import annotations

from flask import request

from shared.http import members as http_members

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis

from services.messaging import network
from services.messaging.store import READ, SEND, Keys, with_outbox
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.events.catalogue import EXCERPT_MAX
from shared.events.envelope import PENDING_VERSION
from shared.problems import Forbidden, Invalid, NotFound
from shared.settings import Settings
from shared.store_client import read_many

TEXT_MAX = 8_000
GROUP_MAX_OTHERS = 49
REQUEST_TTL_SECONDS = 24 * 3600  # as long as the HTTP layer keeps an Idempotency-Key

Client = redis.Redis | redis.client.Pipeline


@dataclass(frozen=True)
class Message:
    conversation_id: str
    seq: int
    sender: str | None  # None: a former member (their account is closed)
    text: str
    sent_at_ms: int

    @property
    def id(self) -> str:
        return message_id(self.conversation_id, self.seq)


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str
    participants: list[str]  # former members left out
    created_at_ms: int
    last_seq: int
    last_sender: str | None
    last_excerpt: str
    last_at_ms: int
    read_up_to: dict[str, int]  # participant → seq (0: nothing read)
    unread: dict[str, int]  # participant → the others' messages after their receipt
    version: int


# How many conversations' kind and participants one process remembers (``Messaging.headers``).
HEADERS_KEPT = 20_000


class Messaging:
    """What every rule needs: the store, the outbox, the keys and the settings.

    ``headers``: conversation → (kind, participants) of the conversations this process has
    read. Both are fixed when a conversation is created and a conversation is never deleted,
    so what is remembered stays true: a send reads only the replica before its script, and a
    page of the list or of a stream reads the conversations and the replica they need in one
    round trip."""

    def __init__(self, store: redis.Redis, settings: Settings):
        self.store = store
        self.settings = settings
        self.keys = Keys(settings.shards)
        self.outbox = Outbox("messaging", settings)
        self.headers: dict[str, tuple[str, list[str]]] = {}

    def remember(self, conversation_id: str, kind: str, participants: list[str]) -> None:
        if len(self.headers) >= HEADERS_KEPT:
            self.headers.clear()
        self.headers[conversation_id] = (kind, participants)

    def header(self, conversation_id: str) -> tuple[str, list[str]] | None:
        """The conversation's kind and participants (former members too), or None when it does
        not exist: remembered, or read once."""
        found = self.headers.get(conversation_id)
        if found is None:
            kind, raw = self.store.hmget(self.keys.conversation(conversation_id), ["kind", "participants"])
            if raw is None:
                return None
            found = (kind, json.loads(raw))
            self.remember(conversation_id, *found)
        return found


def message_id(conversation_id: str, seq: int) -> str:
    return f"{conversation_id}-{seq}"


def seq_of(conversation_id: str, message: str) -> int | None:
    """The seq a message id names in this conversation, or None if it names none."""
    prefix = f"{conversation_id}-"
    tail = message[len(prefix):] if message.startswith(prefix) else ""
    # As the service writes them: 1, 2, 3... (no sign, no leading zero).
    return int(tail) if tail.isascii() and tail.isdigit() and 0 < len(tail) <= 15 and tail[0] != "0" else None


def direct_id(a: str, b: str) -> str:
    """The one conversation of two members: derived from the pair, whichever writes first."""
    return hashlib.sha256(f"direct|{network_pair(a, b)}".encode()).hexdigest()[:32]


def network_pair(a: str, b: str) -> str:
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


def group_id(sender: str, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(uuid.NAMESPACE_URL, f"rapport:messaging:group:{sender}:{idempotency_key}").hex


def excerpt(text: str) -> str:
    return text[:EXCERPT_MAX]


def missing_members(m: Messaging, members: list[str]) -> list[str]:
    """The members of ``members`` that do not exist (never registered, or their account closed),
    from the service's member replica (``shared.members``; on a miss the profiles API is asked
    with the caller's own token)."""
    return [member for member in members if not http_members.directory().exists(member, _authorization())]


def _check_participants(sender: str, participants: list[str]) -> list[str]:
    others = list(participants)
    if not others:
        raise Invalid({"participants": ["Name at least one member."]}, code="no_participants")
    if sender in others:
        raise Invalid({"participants": ["A member cannot message themselves."]}, code="cannot_message_self")
    if len(set(others)) != len(others):
        raise Invalid({"participants": ["A member is named twice."]}, code="duplicate_participants")
    if len(others) > GROUP_MAX_OTHERS:
        raise Invalid({"participants": [f"A group has at most {GROUP_MAX_OTHERS} others."]},
                      code="too_many_participants")
    return others


def _check_text(text: str) -> None:
    if not text.strip():
        raise Invalid({"text": ["A message needs some text."]}, code="empty_text")
    if len(text) > TEXT_MAX:
        raise Invalid({"text": [f"At most {TEXT_MAX} characters."]}, code="text_too_long")


def _refuse_not_connected(others: list[str]) -> None:
    named = (": " + ", ".join(others)) if others else ""
    raise Forbidden(f"Only connections can message each other; not connected{named}.",
                    code="not_connected", not_connected=others)


def _refuse_block() -> None:
    # Says nothing about who blocked whom, or that a block is the reason.
    raise Forbidden("You cannot message this member.", code="messaging_refused")


def start(m: Messaging, sender: str, participants: list[str], text: str,
          idempotency_key: str | None = None) -> tuple[Conversation, Message, bool]:
    """Start a conversation with its first message, or, for two members who already have one,
    append to it. Returns the conversation, the message and whether the conversation is new.

    403 ``not_connected`` (naming who) unless the sender is connected to every other member now;
    403 ``messaging_refused`` between two members a block stands between; 422 for no one,
    oneself, a duplicate, or an empty or too long text."""
    others = _check_participants(sender, participants)
    _check_text(text)
    missing = missing_members(m, others)
    if missing:
        raise NotFound("No such member: " + ", ".join(missing) + ".", code="member_not_found", members=missing)
    found, gone = network.state(m.store, m.keys, sender, others)
    wait_ms = m.settings.messaging_connection_wait_ms
    if len(others) == 1:
        if network.is_blocked(found[others[0]]):
            _refuse_block()
        if gone or network.not_connected(m.store, m.keys, sender, others, wait_ms, found):
            _refuse_not_connected(others)
        conversation_id, kind = direct_id(sender, others[0]), "direct"
    else:
        # A blocked member is not connected: named like any other, the block itself unsaid.
        refused = network.not_connected(m.store, m.keys, sender, others, wait_ms, found)
        refused = [o for o in others if o in set(refused) | gone]
        if refused:
            _refuse_not_connected(refused)
        conversation_id, kind = group_id(sender, idempotency_key), "group"
    members = sorted([sender, *others])
    outcome, seq, _ = _send(m, conversation_id, kind, members, sender, text, idempotency_key, create=True)
    conversation = load(m, conversation_id, sender)
    return conversation, _message(m, conversation_id, seq), outcome == "created"


def send(m: Messaging, sender: str, conversation_id: str, text: str,
         idempotency_key: str | None = None, reads: Callable | None = None) -> Message:
    """Append a message to a conversation the sender takes part in.

    404 ``conversation_not_found`` for anyone else; in a direct conversation 403
    ``not_connected`` once the two are no longer connected (the history stays readable) and 403
    ``messaging_refused`` across a block (which also hides it from both); in a group 403
    ``messaging_refused`` when a participant blocks the sender. ``reads``: as ``network.state``'s."""
    _check_text(text)
    header = m.header(conversation_id)
    if header is None or sender not in header[1]:
        raise _not_found()
    kind, participants = header
    others = [p for p in participants if p != sender]
    found, gone = network.state(m.store, m.keys, sender, others, reads)
    if kind == "direct":
        if network.is_blocked(found[others[0]]):
            _refuse_block()
        if gone or network.not_connected(m.store, m.keys, sender, others, m.settings.messaging_connection_wait_ms,
                                         found):
            _refuse_not_connected(others)
    elif any(network.blocked_by(found[o], o) for o in others):
        _refuse_block()
    outcome, seq, at = _send(m, conversation_id, kind, participants, sender, text, idempotency_key, create=False)
    if outcome == "duplicate":
        return _message(m, conversation_id, seq)
    return Message(conversation_id, seq, sender, text, at)


def _send(m: Messaging, conversation_id: str, kind: str, members: list[str], sender: str, text: str,
          idempotency_key: str | None, create: bool) -> tuple[str, int, int]:
    at = now_ms()
    event = new_event("messaging", "message.sent", {
        "conversation_id": conversation_id, "kind": kind, "participants": members, "sender": sender,
        "seq": 1, "excerpt": excerpt(text), "sent_at": rfc3339(at), "version": PENDING_VERSION})
    # The seq too is the script's to give: its placeholder, like the version's, is 0.
    event.data["seq"] = 0
    fields = m.outbox.xadd_args(event)
    keys = m.keys
    outcome, seq, _ = with_outbox(SEND, m.store, keys={
        "conversation": keys.conversation(conversation_id), "messages": keys.messages(conversation_id),
        # A key is the caller's for one operation, as in the HTTP layer: a start and a send apart.
        "request": keys.request(conversation_id, sender, f"{'start' if create else 'send'}:{idempotency_key or ''}"),
        "outbox": m.outbox.key_for(keys.tag(conversation_id))},
        sender=sender, kind=kind, participants=json.dumps(members), text=text, excerpt=excerpt(text), now=at,
        request_ttl=REQUEST_TTL_SECONDS if idempotency_key else 0, create="1" if create else "0",
        wake=m.outbox.wake_channel, event=fields)
    if outcome in ("not_found", "not_participant"):
        raise _not_found()
    return outcome, int(seq), at


def read(m: Messaging, member: str, conversation_id: str, up_to: str | None) -> tuple[int, int]:
    """Move ``member``'s read receipt forward to ``up_to`` (a message id; None: the newest).
    Returns (read up to seq, unread left). A receipt never moves back: reading an older message
    changes nothing. 422 ``message_not_found`` for a message not in the conversation."""
    conversation = load(m, conversation_id, member)
    seq = None
    if up_to is not None:
        seq = seq_of(conversation_id, up_to)
        if seq is None:
            raise Invalid({"up_to": ["Not a message of this conversation."]}, code="message_not_found")
    event = new_event("messaging", "conversation.read", {
        "conversation_id": conversation_id, "participants": m.header(conversation_id)[1], "member": member, "up_to": 1,
        "unread_count": 0, "at": rfc3339(now_ms()), "version": PENDING_VERSION})
    event.data["up_to"] = 0
    outcome, read_up_to, unread = with_outbox(READ, m.store, keys={
        "conversation": m.keys.conversation(conversation_id), "messages": m.keys.messages(conversation_id),
        "outbox": m.outbox.key_for(m.keys.tag(conversation_id))},
        member=member, up_to="" if seq is None else seq, event=m.outbox.xadd_args(event))
    if outcome == "not_found":
        raise _not_found()
    if outcome == "no_such_message":
        if conversation.last_seq == 0:
            return 0, 0
        raise Invalid({"up_to": ["Not a message of this conversation."]}, code="message_not_found")
    return int(read_up_to), int(unread)


def _not_found() -> NotFound:
    return NotFound("No such conversation.", code="conversation_not_found")


# --- reads of the conversation's record ---------------------------------------------------

_FIELDS = ("kind", "participants", "created_at", "last_seq", "last_sender", "last_excerpt", "last_at", "version")


def _parse(conversation_id: str, raw: dict, m: Messaging | None = None) -> Conversation | None:
    if not raw or "participants" not in raw:
        return None
    participants = json.loads(raw["participants"])
    if m is not None:
        m.remember(conversation_id, raw["kind"], participants)
    return Conversation(
        id=conversation_id, kind=raw["kind"], participants=participants, created_at_ms=int(raw["created_at"]),
        last_seq=int(raw.get("last_seq", 0)), last_sender=raw.get("last_sender"),
        last_excerpt=raw.get("last_excerpt", ""), last_at_ms=int(raw.get("last_at", raw["created_at"])),
        read_up_to={p: int(raw.get(f"read:{p}", 0)) for p in participants},
        unread={p: int(raw.get(f"unread:{p}", 0)) for p in participants}, version=int(raw.get("version", 0)))


def hydrate(m: Messaging, viewer: str, conversation_ids: list[str]) -> dict[str, Conversation]:
    """The conversations of ``conversation_ids`` that ``viewer`` may see now, as they are: one
    HGETALL each (each in its shard) and the pair records and closed accounts they need, in one
    round trip when the process knows their participants (``Messaging.headers``), else two. A
    conversation ``viewer`` is not in, and a direct one a block hides, is left out; former
    members are left out of the participants and their messages' sender."""
    return _hydrate(m, viewer, conversation_ids, {})[0]


def visible_messages(m: Messaging, viewer: str, wanted: dict[str, list[int]]) \
        -> tuple[dict[str, Conversation], dict[tuple[str, int], Message]]:
    """``hydrate`` of the conversations of ``wanted`` (conversation → seqs), with those of their
    messages ``viewer`` may see, in the same round trips."""
    return _hydrate(m, viewer, list(wanted), wanted)


def _hydrate(m: Messaging, viewer: str, conversation_ids: list[str], wanted: dict[str, list[int]]):
    # With every conversation's participants remembered, the pair records and closed accounts
    # they need go in the same round trip as the conversations; else in a second one.
    headers = [m.headers.get(cid) for cid in conversation_ids]
    known = all(h is not None for h in headers)
    if known:
        paired, others = _replica_reads(viewer, [h for h in headers if viewer in h[1]])
    # One shard per command; sent as read_many sends a feed page (no redis-py pipeline bookkeeping).
    commands = [("HGETALL", m.keys.conversation(cid)) for cid in conversation_ids]
    asked = [(cid, seqs) for cid, seqs in wanted.items() if seqs]
    commands += [("HMGET", m.keys.messages(cid), *seqs) for cid, seqs in asked]
    if known:
        commands += _replica_commands(m, viewer, paired, others)
    replies = read_many(m.store, commands)
    raws = [_as_fields(r) for r in replies[:len(conversation_ids)]]
    ends = len(conversation_ids) + len(asked)
    message_raws = dict(zip([cid for cid, _ in asked], replies[len(conversation_ids):ends]))
    found = {cid: c for cid, raw in zip(conversation_ids, raws)
             if (c := _parse(cid, raw, m)) is not None and viewer in c.participants}
    direct_others = {cid: next(p for p in c.participants if p != viewer)
                     for cid, c in found.items() if c.kind == "direct"}
    if known:
        replies = replies[ends:]
    else:
        paired, others = _replica_reads(viewer, [(c.kind, c.participants) for c in found.values()])
        replies = read_many(m.store, _replica_commands(m, viewer, paired, others)) if paired or others else []
    records = {other: _as_fields(reply) for other, reply in zip(paired, replies)}
    gone = {o for o, closed in zip(others, replies[len(paired):]) if closed}
    shown = {}
    for cid, c in found.items():
        if cid in direct_others and network.is_blocked(records[direct_others[cid]]):
            continue
        if gone:
            c = Conversation(**{**c.__dict__, "participants": [p for p in c.participants if p not in gone],
                                "last_sender": None if c.last_sender in gone else c.last_sender})
        shown[cid] = c
    messages = {}
    for cid, seqs in asked:
        if cid not in shown:
            continue
        for seq, raw in zip(seqs, message_raws[cid]):
            if raw:  # senders are participants: ``gone`` knows the closed ones
                d = json.loads(raw)
                messages[(cid, seq)] = Message(cid, seq, None if d["sender"] in gone else d["sender"], d["text"],
                                               int(d["sent_at"]))
    return shown, messages


def _replica_reads(viewer: str, headers: list[tuple[str, list[str]]]) -> tuple[list[str], list[str]]:
    """Whose pair record with ``viewer`` (the other of each direct conversation) and whose closed
    mark (every other participant) conversations of these headers need."""
    paired = sorted({p for kind, participants in headers if kind == "direct" for p in participants if p != viewer})
    others = sorted({p for _, participants in headers for p in participants} - {viewer})
    return paired, others


def _replica_commands(m: Messaging, viewer: str, paired: list[str], others: list[str]) -> list[tuple]:
    return ([("HGETALL", m.keys.pair(viewer, other)) for other in paired]
            + [("EXISTS", m.keys.closed(other)) for other in others])


def _as_fields(reply) -> dict:
    """A HGETALL reply of ``read_many`` as a dict: a flat field, value list as the parser reads
    it (RESP2), a dict as a cluster client's callbacks (or RESP3) give it."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2]))


def load(m: Messaging, conversation_id: str, viewer: str) -> Conversation:
    """One conversation as ``viewer`` may see it; 404 ``conversation_not_found`` otherwise."""
    conversation = hydrate(m, viewer, [conversation_id]).get(conversation_id)
    if conversation is None:
        raise _not_found()
    return conversation


def _message(m: Messaging, conversation_id: str, seq: int) -> Message:
    return messages_by_seq(m, conversation_id, [seq])[0]


def messages_by_seq(m: Messaging, conversation_id: str, seqs: list[int]) -> list[Message]:
    """The messages of ``seqs`` (those that exist), senders whose account is closed as None."""
    if not seqs:
        return []
    raws = m.store.hmget(m.keys.messages(conversation_id), seqs)
    loaded = [(seq, json.loads(raw)) for seq, raw in zip(seqs, raws) if raw]
    gone = network.closed(m.store, m.keys, {d["sender"] for _, d in loaded})
    return [Message(conversation_id, seq, None if d["sender"] in gone else d["sender"], d["text"],
                    int(d["sent_at"])) for seq, d in loaded]


def messages_page(m: Messaging, viewer: str, conversation_id: str, limit: int,
                  before: int | None) -> tuple[list[Message], int | None]:
    """A page of the conversation's messages, newest first, before seq ``before``: seqs only
    grow, so a page never repeats or skips one when new messages arrive. Returns the messages
    and the seq to continue before (None at the first message)."""
    conversation = load(m, conversation_id, viewer)
    top = conversation.last_seq if before is None else min(before - 1, conversation.last_seq)
    seqs = list(range(top, max(top - limit, 0), -1))
    page = messages_by_seq(m, conversation_id, seqs)
    last = seqs[-1] if seqs else 0
    return page, (last if last > 1 else None)


def _authorization() -> str:
    return request.headers.get("Authorization", "")
