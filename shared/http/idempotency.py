"""``Idempotency-Key`` for creating POSTs: a repeat with the same key returns the first result.

A key goes through three states, in one Redis string per (scope, member, key):

- ``pending``: a request is being served. It expires after ``request_timeout_seconds`` (the
  time gunicorn gives a request), so a request whose worker died frees its key soon, not in a day.
- ``written``: the request's write is stored. The outbox write of an idempotent request sets
  this state in the write's own MULTI/EXEC (``Outbox.add``), with the data of the events it
  wrote, so a request killed after its write but before its answer leaves it discoverable: a
  retry answers from the stored entity (``replay``), and never writes it twice.
- ``done``: the answer itself, replayed as it was for ``idempotency_ttl_seconds``.

A write made in a Lua script (``Outbox.xadd_args``) leaves no ``written`` mark: the creates that
write so (invitations, introductions) refuse a second identical write by their own rules, so a
retry after a lost answer gets that refusal (409), not a duplicate.

A request that outlives ``request_timeout_seconds`` loses its claim; a retry may then run too.

The record lives in the member's shard (``<service>:{s17}:idempotency:<scope>:<member>:<key>``),
one key, so every command on it touches one slot. A write in the member's own shard (a follow)
takes the ``written`` mark into its transaction as it is. A write in another shard (a post: the
post's shard) cannot: just before its transaction the record turns ``writing``, naming the
write's hash tag, and the transaction stores the mark beside the write
(``<service>:{s5}:idempotency-written:<scope>:<member>:<key>``). A retry finding ``writing``
reads that mark: present, the write happened (replayed as ``written``); absent past
``request_timeout_seconds``, it never ran, and the retry claims the key.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Callable

import redis
from flask import current_app, request

from shared.bus.outbox import marking_writes
from shared.lua import LuaScript
from shared.problems import Conflict, Invalid
from shared.slots import slot, tag

# Frees the key of a request that failed, only while it is this request's claim and still
# pending: a failure after the write keeps the ``written`` mark.
RELEASE = LuaScript("idempotency_release", keys=("record",), args=("claim",), source="""
local stored = redis.call('GET', K.record)
if not stored then return 0 end
local record = cjson.decode(stored)
if record['state'] == 'pending' and record['claim'] == A.claim then return redis.call('DEL', K.record) end
return 0
""")


def _fingerprint() -> str:
    return hashlib.sha256(request.get_data() or b"").hexdigest()


def record_key(service: str, scope: str, member: str, key: str, shards: int) -> str:
    """The record of one (scope, member, key), in the member's shard of ``service``'s store."""
    return f"{service}:{tag(member, shards)}:idempotency:{scope}:{member}:{key}"


def _queued_keys(pipe) -> list[str]:
    """The first key of each command queued on ``pipe`` so far (a single node's pipeline or a
    cluster's), for the commands whose first argument is a key (XADD, SET, HSET...)."""
    strategy = getattr(pipe, "_execution_strategy", None)
    commands = [c.args for c in strategy.command_queue] if strategy is not None \
        else [args for args, _ in getattr(pipe, "command_stack", [])]
    return [str(args[1]) for args in commands if len(args) > 1 and str(args[0]).upper() == "XADD"]


def _hash_tag(key: str) -> str:
    """A hash tag whose slot is ``key``'s: its own tag, or the whole key made one."""
    opened = key.find("{")
    closed = key.find("}", opened + 1)
    if opened != -1 and closed > opened + 1:
        return key[opened:closed + 1]
    if "{" in key or "}" in key:  # wrapped, its own braces would end the tag early
        raise ValueError(f"{key!r}: braces without a hash tag of its own")
    return "{" + key + "}"


def idempotent(store: redis.Redis, scope: str, member: str, create: Callable[[], tuple[dict, int]],
               replay: Callable[[list[dict]], tuple[dict, int]] | None = None) -> tuple[dict, int]:
    """Run ``create`` once per (``member``, ``Idempotency-Key``); replay its result after that.

    ``replay(events)`` answers a retry whose first request stored its write but died before
    its answer: ``events`` are the ``{"type", "data"}`` of the events that write emitted (``type``
    the short name, ``post.created``).
    A key reused with a different body is a 422; a repeat while the first is still being
    served is a 409. Without the header, ``create`` simply runs.
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return create()
    if not 1 <= len(key) <= 255:
        raise Invalid({"Idempotency-Key": ["Must be 1-255 characters."]}, code="invalid_idempotency_key")
    settings = current_app.config["RAPPORT_SETTINGS"]
    service = current_app.config["RAPPORT_SERVICE"]
    record = record_key(service, scope, member, key, settings.shards)

    def written_key(write_tag: str) -> str:
        return f"{service}:{write_tag}:idempotency-written:{scope}:{member}:{key}"

    fingerprint, claim = _fingerprint(), uuid.uuid4().hex
    while not store.set(record, json.dumps({"state": "pending", "fingerprint": fingerprint, "claim": claim}),
                        nx=True, ex=settings.request_timeout_seconds):
        raw = store.get(record)
        if raw is None:  # expired between the two commands: claim it
            continue
        stored = json.loads(raw)
        if stored.get("fingerprint") != fingerprint:
            raise Invalid({"Idempotency-Key": ["Already used with a different request body."]},
                          code="idempotency_key_reused")
        if stored["state"] == "writing":  # a write in another slot: its mark tells whether it happened
            mark_raw = store.get(written_key(stored["tag"]))
            if mark_raw is not None:
                stored = json.loads(mark_raw)
            elif time.time() - stored["since"] > settings.request_timeout_seconds:
                RELEASE(store, keys={"record": record}, claim=stored["claim"])  # it never wrote
                continue
            else:
                stored["state"] = "pending"
        if stored["state"] == "pending":
            ttl = store.ttl(record) if stored.get("since") is None else \
                settings.request_timeout_seconds - int(time.time() - stored["since"])
            raise Conflict("A request with this Idempotency-Key is still being served; retry shortly.",
                           code="idempotency_key_in_use", retry_after=max(1, ttl))
        if stored["state"] == "written" and replay is not None:
            body, status = replay(stored["events"])
            _store_answer(store, record, fingerprint, body, status, settings.idempotency_ttl_seconds)
            return body, status
        if stored["state"] == "written":
            raise Conflict("The first request with this Idempotency-Key was stored; its answer is not known.",
                           code="idempotency_key_in_use")
        return stored["body"], stored["status"]

    def mark(pipe: redis.client.Pipeline, events) -> None:
        written = json.dumps({"state": "written", "fingerprint": fingerprint, "claim": claim,
                              "events": [{"type": e.name, "data": e.data} for e in events]}, default=str)
        outbox_keys = _queued_keys(pipe)[-1:]  # the outbox entry just queued is in the write's slot
        if all(slot(k) == slot(record) for k in outbox_keys):
            pipe.set(record, written, ex=settings.idempotency_ttl_seconds)
            return
        # Another slot: the mark joins the write's transaction in that slot, and the record says
        # where to look for it, before that transaction runs.
        write_tag = _hash_tag(outbox_keys[0])
        store.set(record, json.dumps({"state": "writing", "fingerprint": fingerprint, "claim": claim,
                                      "tag": write_tag, "since": time.time()}),
                  ex=settings.idempotency_ttl_seconds)
        pipe.set(written_key(write_tag), written, ex=settings.idempotency_ttl_seconds)

    try:
        with marking_writes(mark):
            body, status = create()
    except Exception:
        RELEASE(store, keys={"record": record}, claim=claim)  # pending only: a write's mark stays
        raise
    _store_answer(store, record, fingerprint, body, status, settings.idempotency_ttl_seconds)
    return body, status


def _store_answer(store: redis.Redis, record: str, fingerprint: str, body: dict, status: int, ttl: int) -> None:
    store.set(record, json.dumps({"state": "done", "fingerprint": fingerprint, "body": body, "status": status},
                                 default=str), ex=ttl)
