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
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Callable

import redis
from flask import current_app, request

from shared.bus.outbox import marking_writes
from shared.problems import Conflict, Invalid

# Frees the key of a request that failed, only while it is this request's claim and still
# pending: a failure after the write keeps the ``written`` mark. One key, so one slot.
_RELEASE = """
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local record = cjson.decode(stored)
if record['state'] == 'pending' and record['claim'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _fingerprint() -> str:
    return hashlib.sha256(request.get_data() or b"").hexdigest()


def record_key(scope: str, member: str, key: str) -> str:
    """The record of one (scope, member, key): the member in the hash tag."""
    return f"idempotency:{scope}:{{{member}}}:{key}"


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
    record = record_key(scope, member, key)
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
        if stored["state"] == "pending":
            ttl = store.ttl(record)
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
        pipe.set(record, json.dumps({"state": "written", "fingerprint": fingerprint, "claim": claim,
                                     "events": [{"type": e.name, "data": e.data} for e in events]},
                                    default=str), ex=settings.idempotency_ttl_seconds)

    try:
        with marking_writes(mark):
            body, status = create()
    except Exception:
        store.eval(_RELEASE, 1, record, claim)
        raise
    _store_answer(store, record, fingerprint, body, status, settings.idempotency_ttl_seconds)
    return body, status


def _store_answer(store: redis.Redis, record: str, fingerprint: str, body: dict, status: int, ttl: int) -> None:
    store.set(record, json.dumps({"state": "done", "fingerprint": fingerprint, "body": body, "status": status},
                                 default=str), ex=ttl)
