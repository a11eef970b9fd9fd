"""Type-ahead search over members' names: every word of the query is a prefix of a word of
the name, without regard to case or accents ("ada lov" and "ADA" find "Ada Lovelace").

The index: for each prefix (1 to ``PREFIX_MAX`` characters) of each word of a folded name, a
sorted set ``profiles:{<prefix's shard>}:names:<prefix>`` holds ``<folded name>\\x00<member>``
at score 0, so it reads in name order by lex range and a cursor is the last entry read. Each
set is one key (one slot); the worker keeps them from the service's own ``member.*`` events.
A registration costs one ZADD per distinct prefix: Σ min(len(word), PREFIX_MAX) over its
words, 11 for "Ada Lovelace"; a rename removes the old entries and adds the new.

A query reads one set, the smallest of its words' (one ZCARD each to choose), and checks the
other words against the names it holds. The caller's connections come first: from the
caller's copy of their connections' names (one hash in the caller's shard, kept by the worker
beside its replica of connections, and on a rename one HSET per connection), then everyone
else in name order.
"""
from __future__ import annotations

import base64
import json
import re
import unicodedata
from dataclasses import dataclass

import redis

from services.profiles.store import Keys
from shared.problems import Invalid

PREFIX_MAX = 12
PAGE_MAX = 20
# Index entries examined for one page past the connections: a page may come back short (with a
# cursor) when most candidates are filtered out, rather than a query reading a whole set.
SCAN_BUDGET = 2_000
_CHUNK = 200
_WORD = re.compile(r"\w+")
SEPARATOR = "\x00"


def fold(text: str) -> str:
    """``text`` without accents (NFKD, combining marks dropped) and case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The folded words of ``text``, in order."""
    return _WORD.findall(fold(text))


def entry(name: str, member: str) -> str | None:
    """The index entry of ``member`` named ``name`` (None: a name without any letter or digit)."""
    found = words(name)
    return f"{' '.join(found)}{SEPARATOR}{member}" if found else None


def prefixes(name: str) -> set[str]:
    """Every prefix the index files ``name`` under."""
    return {w[:n] for w in words(name) for n in range(1, min(len(w), PREFIX_MAX) + 1)}


def matches(query_words: list[str], name_words: list[str]) -> bool:
    return all(any(w.startswith(q) for w in name_words) for q in query_words)


@dataclass(frozen=True)
class Found:
    member: str
    name: str
    headline: str
    connection: bool


def _cursor(phase: str, after: str, anchor: str = "") -> str:
    return base64.urlsafe_b64encode(json.dumps([phase, after, anchor]).encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[str, str, str]:
    try:
        if len(cursor) > 1024:
            raise ValueError("too long")
        phase, after, anchor = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if phase not in ("c", "o") or not isinstance(after, str) or not isinstance(anchor, str):
            raise ValueError("not a search cursor")
        after.encode(), anchor.encode()
        return phase, after, anchor
    except (ValueError, TypeError, UnicodeError, RecursionError):
        raise Invalid({"cursor": ["Not a cursor this service issued."]}, code="invalid_cursor") from None


def search(store: redis.Redis, keys: Keys, caller: str, q: str, limit: int = PAGE_MAX,
           cursor: str | None = None) -> tuple[list[Found], str | None]:
    """A page of the members whose names match ``q``: the caller's connections first, then
    the others, each part in name order; never the caller, a member blocked either way or a
    closed account. Returns ``(found, next_cursor)``."""
    query = words(q)
    if not query:
        raise Invalid({"q": ["Give at least one letter or digit."]}, code="invalid_query")
    phase, after, anchor = _read_cursor(cursor) if cursor else ("c", "", "")
    with store.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.connections(caller))
        pipe.smembers(keys.blocks(caller))
        pipe.smembers(keys.blocked_by(caller))
        connections, blocks, blocked_by = pipe.execute()
    hidden = blocks | blocked_by | {caller}
    found: list[Found] = []
    if phase == "c":
        page, more, last = _connections_part(store, keys, caller, query, hidden, after, limit)
        found.extend(page)
        if more:
            return found, _cursor("c", last)
        phase, after = "o", ""
    if anchor not in {q[:PREFIX_MAX] for q in query}:
        anchor = _anchor(store, keys, query)
    page, last, more = _others_part(store, keys, query, connections | hidden, after, limit - len(found), anchor)
    found.extend(page)
    return found, (_cursor("o", last, anchor) if more else None)


def _anchor(store, keys: Keys, query: list[str]) -> str:
    """The query word whose prefix set is the smallest: the one set a query reads (named in the
    cursor, so the pages of one query read the same set)."""
    candidates = sorted({q[:PREFIX_MAX] for q in query})
    if len(candidates) == 1:
        return candidates[0]
    with store.pipeline(transaction=False) as pipe:
        for prefix in candidates:
            pipe.zcard(keys.names(prefix))
        sizes = pipe.execute()
    return min(zip(sizes, candidates))[1]


def _connections_part(store, keys: Keys, caller: str, query: list[str], hidden: set[str], after: str, limit: int):
    """The matching connections after ``after``, up to ``limit``, and whether more follow: one
    HGETALL of the caller's copy of their connections' names, then the page's records."""
    names = store.hgetall(keys.connection_names(caller))
    hits = sorted((entry, member) for member, entry in names.items()
                  if member not in hidden and entry > after
                  and matches(query, entry.rpartition(SEPARATOR)[0].split(" ")))
    page = hits[:limit]
    found = []
    if page:
        with store.pipeline(transaction=False) as pipe:
            for _, member in page:
                pipe.hmget(keys.member(member), "status", "name", "headline")
            records = pipe.execute()
        found = [Found(member, name, headline or "", True)
                 for (_, member), (status, name, headline) in zip(page, records) if status == "active" and name]
    # The cursor is the last entry of the page, whether or not its record still stood.
    return found, len(hits) > limit, (page[-1][0] if page else after)


def _others_part(store, keys: Keys, query: list[str], skip: set[str], after: str, limit: int, anchor: str):
    """Up to ``limit`` matching members not in ``skip``, in name order after ``after``: the page,
    where the next page starts, and whether one may follow. (One candidate past the page tells
    whether there is more; ``SCAN_BUDGET`` entries examined end a page early, with a cursor.)"""
    index = keys.names(anchor)
    candidates: list[tuple[str, str]] = []  # (entry, member)
    examined, last, more = 0, after, True
    while len(candidates) <= limit:
        if examined >= SCAN_BUDGET:
            break
        chunk = store.zrangebylex(index, f"({last}" if last else "-", "+", start=0, num=_CHUNK)
        for item in chunk:
            examined += 1
            last = item
            name_part, _, member = item.rpartition(SEPARATOR)
            if member not in skip and matches(query, name_part.split(" ")):
                candidates.append((item, member))
                if len(candidates) > limit:
                    break
        if len(chunk) < _CHUNK and (not chunk or last == chunk[-1]):
            more = len(candidates) > limit
            break
    else:
        more = True
    page = candidates[:limit]
    if len(candidates) > limit:
        resume = page[-1][0] if page else after
    else:
        resume = last
    found = []
    if page:
        with store.pipeline(transaction=False) as pipe:
            for _, member in page:
                pipe.hmget(keys.member(member), "status", "name", "headline")
            records = pipe.execute()
        # The index lags a closing by the worker's few milliseconds: the record has the last word.
        for (_, member), (status, name, headline) in zip(page, records):
            if status == "active" and name:
                found.append(Found(member, name, headline or "", False))
    return found, resume, more
