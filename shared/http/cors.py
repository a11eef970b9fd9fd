"""Cross-origin requests from browser pages, for the origins ``RAPPORT_CORS_ORIGINS`` names
(comma-separated, ``*`` for any; empty: no CORS headers at all, browsers refuse every page
of another origin).

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) carries no token by design:
it is answered here, before authentication, with 204 and what the API accepts. Every other
answer to an allowed origin names it and exposes the headers a client reads.

A small pair of hooks rather than flask-cors: the preflight has to be answered before the
token check, which flask-cors's after-request hook cannot do.
"""
from __future__ import annotations

from flask import Flask, Response, request

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID, X-Request-Id"
EXPOSE_HEADERS = "Location, ETag, Link, Retry-After, RateLimit, RateLimit-Policy, X-Request-Id"
MAX_AGE_SECONDS = 600  # how long a browser may reuse a preflight's answer


def parse_origins(setting: str) -> frozenset[str]:
    """``"https://a.example, https://b.example"`` → the set of allowed origins."""
    return frozenset(o.strip().rstrip("/") for o in setting.split(",") if o.strip())


def allowed_origin(origins: frozenset[str], origin: str | None) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for ``origin``, or None when it is not allowed."""
    if not origin or not origins:
        return None
    if origin in origins or "*" in origins:
        return origin
    return None


def install(app: Flask, setting: str) -> None:
    origins = parse_origins(setting)
    if not origins:
        return

    def preflight():
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        response = Response(status=204)
        origin = allowed_origin(origins, request.headers.get("Origin"))
        if origin is not None:
            response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
        return response

    def allow(response: Response) -> Response:
        response.vary.add("Origin")  # the answer differs by origin: caches must keep them apart
        origin = allowed_origin(origins, request.headers.get("Origin"))
        if origin is not None:
            response.headers["Access-Control-Allow-Origin"] = origin
            if request.method != "OPTIONS":
                response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        return response

    # First of the before-request hooks: ahead of the size, token and body checks.
    app.before_request_funcs.setdefault(None, []).insert(0, preflight)
    app.after_request(allow)
