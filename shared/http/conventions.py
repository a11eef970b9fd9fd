"""HTTP conventions every service keeps: ``Location`` on a 201, ``ETag`` and ``If-None-Match``
→ 304 on reads of one resource, and a ``Link: <...>; rel="next"`` (RFC 8288) beside a page's
``next_cursor``.

URLs are path-absolute (``/connections/v1/invitations/...``), with the gateway's prefix when
there is one: the gateway passes the client's host without its port, so an absolute URL the
service built could name the wrong one; a client resolves these against the request's URL.
"""
from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from flask import Response, current_app, g, request, url_for
from flask_smorest import Blueprint
from flask_smorest.utils import get_appcontext

# Marks read by the OpenAPI plugin (shared/http/openapi.py), which documents what they add.
CONDITIONAL_MARK = "x-rapport-conditional"


def location(endpoint: str, **values) -> dict[str, str]:
    """The ``Location`` header naming the resource at ``endpoint`` (a view of this service)."""
    return {"Location": url_for(endpoint, **values)}


def conditional(view):
    """A read of one resource: its answer carries a weak ``ETag`` of the body, and a request
    whose ``If-None-Match`` holds it is answered 304 with no body.

    Put it above ``@blp.response``: it works on the response that decorator builds.
    """
    @wraps(view)
    def wrapper(*args, **kwargs):
        response = current_app.ensure_sync(view)(*args, **kwargs)
        if not isinstance(response, Response) or response.status_code != 200:
            return response
        response.add_etag(weak=True)
        return response.make_conditional(request.environ)

    return Blueprint.doc(**{CONDITIONAL_MARK: True})(wrapper)


def next_page(cursor: str | None) -> None:
    """Name this request's next page, for a view that writes its page's JSON itself (the
    pages flask-smorest serialises are seen by ``add_link`` on their own)."""
    g.rapport_next_cursor = cursor


def _next_cursor() -> str | None:
    if hasattr(g, "rapport_next_cursor"):
        return g.rapport_next_cursor
    dumped = get_appcontext().get("result_dump")
    if isinstance(dumped, dict) and "items" in dumped:
        return dumped.get("next_cursor")
    return None


def add_link(response: Response) -> Response:
    """After a page: ``Link`` to the next one, the same request with the next cursor."""
    if request.method != "GET" or response.status_code != 200:
        return response
    cursor = _next_cursor()
    if cursor:
        query = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"] + [("cursor", cursor)]
        url = f"{request.script_root}{request.path}?{urlencode(query)}"
        response.headers.add("Link", f'<{url}>; rel="next"')
    return response
