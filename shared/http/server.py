"""What gunicorn answers by itself, before any app sees the request, made to follow the
API's rules: its error pages as problem+json, and a time limit on each read and write of a
client's socket.

Gunicorn has no setting for either. Its workers write every error they meet while parsing
a request (a request line over ``limit_request_line``, headers over
``limit_request_field_size``, a bad chunk...) through ``gunicorn.util.write_error``, an HTML
page; and a gthread worker reads a request with blocking calls and no timeout, so a client
that sends a byte now and then pins one of its threads for as long as it likes.
``install`` replaces the one and bounds the other; ``deploy/gunicorn.conf.py`` calls it in
each worker as it starts (``post_fork``).
"""
from __future__ import annotations

import json

# gunicorn's statuses for the errors it meets itself, and the code clients can rely on.
_CODES = {400: "malformed_request", 403: "forbidden", 414: "request_line_too_long",
          417: "expectation_failed", 431: "headers_too_large", 500: "internal_error", 501: "not_implemented"}


def problem_page(status: int, reason: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response carrying an RFC 9457 problem; the connection closes."""
    code = _CODES.get(status, "http_error")
    body = json.dumps({"type": f"https://rapport.dev/problems/{code}", "title": reason, "status": status,
                       "detail": detail or reason, "code": code}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def _write_error(sock, status_int, reason, mesg):
    from gunicorn import util

    util.write_nonblock(sock, problem_page(int(status_int), reason, mesg))


def install(client_timeout: float) -> None:
    """Answer gunicorn's own errors as problems; give up on a client socket that is silent
    (or does not read) for ``client_timeout`` seconds in the middle of a request."""
    from gunicorn import util

    util.write_error = _write_error
    try:
        from gunicorn.workers import gthread
    except ImportError:  # pragma: no cover - gthread ships with gunicorn
        return
    original_init = gthread.TConn.init
    if getattr(original_init, "rapport_timeout", None) is not None:
        return

    def init(conn):
        original_init(conn)
        conn.sock.settimeout(client_timeout)  # init made it blocking, with no limit

    init.rapport_timeout = client_timeout
    gthread.TConn.init = init
