"""Time in the two forms the project stores: epoch milliseconds (scores) and RFC 3339 strings."""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone

# RFC 3339's date-time (section 5.6): date, "T", time with seconds, an offset. What
# ``datetime.fromisoformat`` also reads (a date alone, no offset, a space for "T") is not one,
# and JSON Schema's ``format: date-time`` refuses it.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rfc3339(ms: int | float) -> str:
    """Epoch milliseconds as an RFC 3339 UTC string, e.g. ``2026-11-26T10:15:00.123Z``."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_rfc3339(value: object) -> bool:
    """Whether ``value`` is an RFC 3339 date-time that names a real instant."""
    if not isinstance(value, str) or RFC3339.fullmatch(value) is None:
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:  # 2026-02-30, 25:00...
        return False
    return True


def parse_rfc3339(value: str) -> int:
    """An RFC 3339 string as epoch milliseconds."""
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
