"""Per-member limits on writes, kept in Redis so that they hold across processes and replicas.

Every POST, PUT, PATCH and DELETE of an authenticated member counts against each of the
service's ``write_rate_limits`` (e.g. ``30/second;900/minute``: a burst and a sustained rate).
A write over a limit is answered 429 ``rate_limited`` with ``Retry-After`` and the IETF
``RateLimit``/``RateLimit-Policy`` headers (draft-ietf-httpapi-ratelimit-headers).

The counting is a moving window per limit, as the ``limits`` library keeps it (a list of the
member's recent write times per limit), but every limit is checked and counted by ONE script in
the service's own store: one round trip per write, however many limits, and a write refused by
any limit counts against none of them. Where the service keeps a replica of its members, the
same script reads the writer's entry (``HIT_READING_MEMBER``), so a write's profile check costs
no round trip of its own; a view that reads before it writes can have that script sent in the
pipeline of its first reads (``shared.http.app.first_reads``). The windows start with the service's name and carry the
member's shard (``follows:rate-limit:LIMITER/writes/{s17}/ada/30/1/second``), so the script's
keys share one slot, on one node as on a Redis Cluster.
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many

from shared.logs import get_logger
from shared.lua import LuaScript
from shared.store_client import connect
from shared.problems import TooManyRequests
from shared.slots import DEFAULT_SHARDS, tag

log = get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Each window is a list of write times, newest first, at most ``limit`` long: a write is allowed
# when the list is short or its oldest entry has left the window. Refusal: the (1-based) limit
# that refuses and when its oldest entry leaves the window; 0 when counted.
_COUNT = """
local function count(windows, now, limits)
  for i = 1, #windows do
    local limit, expiry = tonumber(limits[2 * i - 1]), tonumber(limits[2 * i])
    local oldest = redis.call('LINDEX', windows[i], limit - 1)
    if oldest and tonumber(oldest) >= tonumber(now) - expiry then
      return {i, tostring(tonumber(oldest) + expiry)}
    end
  end
  for i = 1, #windows do
    local limit, expiry = tonumber(limits[2 * i - 1]), tonumber(limits[2 * i])
    redis.call('LPUSH', windows[i], now)
    redis.call('LTRIM', windows[i], 0, limit - 1)
    redis.call('EXPIRE', windows[i], expiry)
  end
  return 0
end
"""

# Returns the refusal, or 0 when counted.
HIT = LuaScript("write_limits_hit", keys=("*windows",), args=("now", "*limits"),
                source=_COUNT + "return count(K.windows, A.now, A.limits)\n")

# The same, and in the same round trip the state of the writer's member entry (``member``, the
# service's replica of them, in their slot as the windows are): ``{state, refusal...}``, state
# '' when the service has no entry for them, else the entry's ``state`` (an entry without one
# is active). The write's profile check (``shared.http.members``) then asks Redis nothing more.
HIT_READING_MEMBER = LuaScript("write_limits_hit_reading_member", keys=("member", "*windows"),
                               args=("now", "*limits"), source=_COUNT + """
local state = ''
if redis.call('EXISTS', K.member) == 1 then
  state = redis.call('HGET', K.member, 'state') or 'active'
end
local refused = count(K.windows, A.now, A.limits)
if refused == 0 then return {state} end
return {state, refused[1], refused[2]}
""")

class RateLimited(TooManyRequests):
    code = "rate_limited"


def _name(limit: RateLimitItem) -> str:
    return f"writes-{limit.get_expiry()}s"


def policy_header(limits: list[RateLimitItem]) -> str:
    """``RateLimit-Policy``: every limit, its quota ``q`` and window ``w`` in seconds."""
    return ", ".join(f'"{_name(l)}";q={l.amount};w={l.get_expiry()}' for l in limits)


class WriteLimits:
    """The write limits of one service, counted in ``store_url``'s Redis."""

    def __init__(self, store_url: str, rates: str, namespace: str = "", service: str = "",
                 shards: int = DEFAULT_SHARDS):
        self.limits = parse_many(rates) if rates.strip() else []
        self.prefix = ":".join(part for part in (service, "rate-limit", namespace) if part)
        self.shards = shards
        self.store = connect(store_url) if self.limits else None
        self.policy = policy_header(self.limits)
        self._args = [n for limit in self.limits for n in (limit.amount, limit.get_expiry())]

    def __bool__(self) -> bool:
        return bool(self.limits)

    def windows(self, member: str) -> list[str]:
        """The keys of ``member``'s windows, one per limit, in the member's slot."""
        shard = tag(member, self.shards)
        return [f"{self.prefix}:{limit.key_for('writes', shard, member)}" for limit in self.limits]

    def hit(self, member: str, member_entry: str | None = None) -> str | None:
        """Count one write of ``member``; raise ``RateLimited`` when it is over a limit.

        With ``member_entry`` (the key of the service's replica of the writer, in their slot),
        also read its state in the same script: returns it ('' when there is no entry), else None.
        """
        now = time.time()
        if member_entry is None:
            reply = HIT(self.store, keys={"windows": self.windows(member)}, now=repr(now), limits=self._args)
        else:
            reply = HIT_READING_MEMBER(self.store, keys={"member": member_entry, "windows": self.windows(member)},
                                       now=repr(now), limits=self._args)
        return self.settle(member, reply, now, member_entry is not None)

    def queue_hit(self, pipe, member: str, member_entry: str | None = None, by_sha: bool = True) -> float:
        """Queue the hit ``hit`` makes on ``pipe`` (a non-transactional pipeline of the service's
        store, other reads beside it), so it costs no round trip of its own; returns the time it
        counts, for ``settle``. Nothing is decided before the pipeline's reply is settled.
        ``by_sha``: by its SHA (``LuaScript.queue_by_sha``: a ``NoScriptError`` reply asks for
        the pipeline again with ``by_sha=False``), else by its text."""
        now = time.time()
        script, keys = HIT, {"windows": self.windows(member)}
        if member_entry is not None:
            script, keys = HIT_READING_MEMBER, {"member": member_entry, **keys}
        if by_sha:
            script.queue_by_sha(pipe, keys=keys, now=repr(now), limits=self._args)
        else:
            script(pipe, keys=keys, now=repr(now), limits=self._args, pipe=pipe)
        return now

    def settle(self, member: str, reply, now: float, reading_member: bool) -> str | None:
        """The writer's entry state from a hit's ``reply`` (None when it read no entry), or
        ``RateLimited`` when a limit refused the write."""
        state = None
        if reading_member:
            state, *refused = reply
        else:
            refused = reply
        if not refused:
            return state
        limit = self.limits[int(refused[0]) - 1]
        retry_after = max(1, math.ceil(float(refused[1]) - now))
        log.info("write rate limited", member=member, limit=str(limit), retry_after=retry_after)
        problem = RateLimited(f"More than {limit.amount} writes in {limit.get_expiry()} s; "
                              f"retry in {retry_after} s.", retry_after=retry_after,
                              limit=limit.amount, window_seconds=limit.get_expiry())
        problem.headers = {"RateLimit-Policy": self.policy,
                           "RateLimit": f'"{_name(limit)}";r=0;t={retry_after}'}
        raise problem
