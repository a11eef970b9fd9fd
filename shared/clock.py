"""Time in the two forms the project stores: epoch milliseconds (scores) and RFC 3339 strings."""
from __future__ import annotations

import time
from datetime import datetime, timezone


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rfc3339(ms: int | float) -> str:
    """Epoch milliseconds as an RFC 3339 UTC string, e.g. ``2026-11-26T10:15:00.123Z``."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> int:
    """An RFC 3339 string as epoch milliseconds."""
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
