"""Typed errors carrying an RFC 9457 problem ``code``; one handler turns them into problem+json."""
from __future__ import annotations

from typing import Any


class Problem(Exception):
    """An error a client can meet. ``code`` is stable snake_case; ``status`` the HTTP status."""

    status = 400
    code = "bad_request"
    title = "Bad request"

    # RFC 9457's members: an extension must not shadow them ("status" is the HTTP status).
    RESERVED = frozenset({"type", "title", "status", "detail", "code", "instance"})

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra: Any):
        clash = self.RESERVED & extra.keys()
        if clash:
            raise TypeError(f"problem extension members shadow RFC 9457 members: {sorted(clash)}")
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": f"https://rapport.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, code, title = 404, "not_found", "Not found"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class Invalid(Problem):
    """A 422: ``errors`` maps each field to its messages."""

    status, code, title = 422, "validation_failed", "Invalid input"

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None, *, code: str | None = None):
        if detail is None:
            detail = "; ".join(f"{name}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                               for name, msgs in errors.items()) or "Invalid input."
        super().__init__(detail, code=code, errors=errors)


class TooManyRequests(Problem):
    status, code, title = 429, "too_many_requests", "Too many requests"


class Unavailable(Problem):
    status, code, title = 503, "unavailable", "Service unavailable"
