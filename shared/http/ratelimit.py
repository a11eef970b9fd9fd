"""Per-member limits on writes, kept in Redis so that they hold across processes and replicas.

Every POST, PUT, PATCH and DELETE of an authenticated member counts against each of the
service's ``write_rate_limits`` (e.g. ``30/second;900/minute``: a burst and a sustained rate).
A write over a limit is answered 429 ``rate_limited`` with ``Retry-After`` and the IETF
``RateLimit``/``RateLimit-Policy`` headers (draft-ietf-httpapi-ratelimit-headers).

The counting is the ``limits`` library's moving window on the service's own store: one key
per member and limit, its hash tag the member's (``rate-limit:<service>:LIMITER/writes/{ada}/30/1/second``),
so each command touches one slot. Limits are checked in turn; a write refused by a later one
has counted against the earlier ones (a client that hammers pays for it).
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from shared.logs import get_logger
from shared.problems import TooManyRequests

log = get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
        prefix = ":".join(p for p in ("rate-limit", namespace, service) if p)
        self.limiter = MovingWindowRateLimiter(RedisStorage(store_url, key_prefix=prefix)) if self.limits else None
        self.policy = policy_header(self.limits)

    def __bool__(self) -> bool:
        return bool(self.limits)

    def hit(self, member: str) -> None:
        """Count one write of ``member``; raise ``RateLimited`` when it is over a limit."""
        tag = f"{{{member}}}"
        for limit in self.limits:
            if self.limiter.hit(limit, "writes", tag):
                continue
            reset = self.limiter.get_window_stats(limit, "writes", tag).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            log.info("write rate limited", member=member, limit=str(limit), retry_after=retry_after)
            problem = RateLimited(f"More than {limit.amount} writes in {limit.get_expiry()} s; "
                                  f"retry in {retry_after} s.", retry_after=retry_after,
                                  limit=limit.amount, window_seconds=limit.get_expiry())
            problem.headers = {"RateLimit-Policy": self.policy,
                               "RateLimit": f'"{_name(limit)}";r=0;t={retry_after}'}
            raise problem
