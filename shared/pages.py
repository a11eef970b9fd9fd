"""Pages of results: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out.

Lists are Redis sorted sets scored by time (milliseconds). A cursor names the last item
of a page by (score, member), so a page never repeats or skips an item when others are
added or removed in between: cursors are stable under writes.
"""
from __future__ import annotations

import base64
import json
import math
from typing import Callable

import redis
from marshmallow import Schema, fields, validate

from shared.problems import Invalid

# A cursor names one (score, member): member ids and post ids are short.
CURSOR_MAX = 512


class PageArgs(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(load_default=None)


def page_schema(item_schema: type[Schema], name: str | None = None, **extra_fields) -> type[Schema]:
    """A schema for ``{"items": [item...], "next_cursor": str|None, **extra}``."""
    attrs = {
        "items": fields.List(fields.Nested(item_schema), required=True),
        "next_cursor": fields.String(allow_none=True, required=True),
        **extra_fields,
    }
    return type(name or f"{item_schema.__name__.removesuffix('Schema')}PageSchema", (Schema,), attrs)


def encode_cursor(score: float, member: str) -> str:
    raw = json.dumps([score, member], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (score, member) a cursor names; a 422 ``invalid_cursor`` for anything this service
    could not have issued (a forged ``[NaN, "x"]`` would otherwise reach Redis as a score)."""
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        score, member = json.loads(base64.urlsafe_b64decode(padded.encode()), parse_constant=_refuse)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not isinstance(member, str):
            raise ValueError("not a (number, string) pair")
        score = float(score)
        if not math.isfinite(score):
            raise ValueError("not a finite score")
        member.encode()  # a lone surrogate is no member a list holds
        return score, member
    except (ValueError, TypeError, OverflowError, RecursionError, UnicodeError):
        raise Invalid({"cursor": ["Not a cursor this service issued."]}, code="invalid_cursor") from None


def _refuse(constant: str):
    raise ValueError(f"{constant} is not a score")


def zset_page(
    client: redis.Redis,
    key: str,
    limit: int,
    cursor: str | None,
    keep: Callable[[str], bool] | None = None,
) -> tuple[list[tuple[str, float]], str | None]:
    """A page of ``key``'s members, highest score (newest) first, after ``cursor``.

    ``keep`` filters members out (e.g. ones the caller may no longer see) without
    shortening the page. Returns ``([(member, score)...], next_cursor)``.
    """
    max_score: str | float = "+inf"
    after: tuple[float, str] | None = None
    if cursor:
        after = decode_cursor(cursor)
        max_score = after[0]
    items: list[tuple[str, float]] = []
    offset = 0
    batch = limit + 1 if keep is None else max(2 * limit, 20)
    while len(items) <= limit:
        chunk = client.zrevrangebyscore(key, max_score, "-inf", start=offset, num=batch, withscores=True)
        if not chunk:
            break
        offset += len(chunk)
        for member, score in chunk:
            # Equal scores come in descending member order: skip up to and including the cursor.
            if after and score == after[0] and member >= after[1]:
                continue
            if keep is not None and not keep(member):
                continue
            items.append((member, score))
            if len(items) > limit:
                break
        if len(chunk) < batch:
            break
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(items[-1][1], items[-1][0]) if has_more and items else None
    return items, next_cursor
