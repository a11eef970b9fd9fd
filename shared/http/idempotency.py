"""``Idempotency-Key`` for creating POSTs: a repeat with the same key returns the first result."""
from __future__ import annotations

import hashlib
import json
from typing import Callable

import redis
from flask import request

from shared.problems import Conflict, Invalid

TTL_SECONDS = 24 * 3600


def _fingerprint() -> str:
    return hashlib.sha256(request.get_data() or b"").hexdigest()


def idempotent(store: redis.Redis, scope: str, member: str,
               create: Callable[[], tuple[dict, int]]) -> tuple[dict, int]:
    """Run ``create`` once per (``member``, ``Idempotency-Key``); replay its result after that.

    A key reused with a different body is a 422; a repeat while the first is still being
    served is a 409. Without the header, ``create`` simply runs.
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return create()
    if not 1 <= len(key) <= 255:
        raise Invalid({"Idempotency-Key": ["Must be 1-255 characters."]}, code="invalid_idempotency_key")
    record = f"idempotency:{scope}:{{{member}}}:{key}"
    fingerprint = _fingerprint()
    if not store.set(record, json.dumps({"state": "pending", "fingerprint": fingerprint}), nx=True,
                     ex=TTL_SECONDS):
        stored = json.loads(store.get(record) or "{}")
        if stored.get("fingerprint") != fingerprint:
            raise Invalid({"Idempotency-Key": ["Already used with a different request body."]},
                          code="idempotency_key_reused")
        if stored.get("state") == "pending":
            raise Conflict("A request with this Idempotency-Key is still being served; retry shortly.",
                           code="idempotency_key_in_use")
        return stored["body"], stored["status"]
    try:
        body, status = create()
    except Exception:
        store.delete(record)
        raise
    store.set(record, json.dumps({"state": "done", "fingerprint": fingerprint, "body": body, "status": status},
                                 default=str), ex=TTL_SECONDS)
    return body, status
