"""Per-member limits on writes, kept in Redis so that they hold across processes and replicas.

Every POST, PUT, PATCH and DELETE of an authenticated member counts against each of the
service's ``write_rate_limits`` (e.g. ``30/second;900/minute``: a burst and a sustained rate).
A write over a limit is answered 429 ``rate_limited`` with ``Retry-After`` and the IETF
``RateLimit``/``RateLimit-Policy`` headers (draft-ietf-httpapi-ratelimit-headers).

The counting is a moving window per limit, as the ``limits`` library keeps it (a list of the
member's recent write times per limit, ``rate-limit:<service>:LIMITER/writes/{ada}/30/1/second``, its hash tag
the member's), but every limit is checked and counted by ONE script in the service's own store:
one round trip per write, however many limits, and a write refused by any limit counts against
none of them.
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many

from shared.logs import get_logger
from shared.lua import LuaScript
from shared.store_client import connect
from shared.problems import TooManyRequests

log = get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Each window is a list of write times, newest first, at most ``limit`` long: a write is allowed
# when the list is short or its oldest entry has left the window. Returns 0 when counted, else
# the (1-based) limit that refuses and when its oldest entry leaves the window.
HIT = LuaScript("write_limits_hit", keys=("*windows",), args=("now", "*limits"), source="""
local now = tonumber(A.now)
for i = 1, #K.windows do
  local limit, expiry = tonumber(A.limits[2 * i - 1]), tonumber(A.limits[2 * i])
  local oldest = redis.call('LINDEX', K.windows[i], limit - 1)
  if oldest and tonumber(oldest) >= now - expiry then
    return {i, tostring(tonumber(oldest) + expiry)}
  end
end
for i = 1, #K.windows do
  local limit, expiry = tonumber(A.limits[2 * i - 1]), tonumber(A.limits[2 * i])
  redis.call('LPUSH', K.windows[i], A.now)
  redis.call('LTRIM', K.windows[i], 0, limit - 1)
  redis.call('EXPIRE', K.windows[i], expiry)
end
return 0
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

    def __init__(self, store_url: str, rates: str, namespace: str = "", service: str = ""):
        self.limits = parse_many(rates) if rates.strip() else []
        # The service's name in the prefix: two services sharing a store (profiles and follows
        # locally) count their writes apart.
        self.prefix = ":".join(p for p in ("rate-limit", namespace, service) if p)
        self.store = connect(store_url) if self.limits else None
        self.policy = policy_header(self.limits)
        self._args = [n for limit in self.limits for n in (limit.amount, limit.get_expiry())]

    def __bool__(self) -> bool:
        return bool(self.limits)

    def hit(self, member: str) -> None:
        """Count one write of ``member``; raise ``RateLimited`` when it is over a limit."""
        tag = f"{{{member}}}"
        windows = [f"{self.prefix}:{limit.key_for('writes', tag)}" for limit in self.limits]
        now = time.time()
        refused = HIT(self.store, keys={"windows": windows}, now=repr(now), limits=self._args)
        if not refused:
            return
        limit = self.limits[int(refused[0]) - 1]
        retry_after = max(1, math.ceil(float(refused[1]) - now))
        log.info("write rate limited", member=member, limit=str(limit), retry_after=retry_after)
        problem = RateLimited(f"More than {limit.amount} writes in {limit.get_expiry()} s; "
                              f"retry in {retry_after} s.", retry_after=retry_after,
                              limit=limit.amount, window_seconds=limit.get_expiry())
        problem.headers = {"RateLimit-Policy": self.policy,
                           "RateLimit": f'"{_name(limit)}";r=0;t={retry_after}'}
        raise problem
