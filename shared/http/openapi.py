"""What every service's OpenAPI document says about errors, in one place.

Every error is RFC 9457 problem+json (``ProblemSchema``). Rather than a decorator on each
view, an apispec plugin adds to every ``/v1`` operation the answers any of them can give:
401 (no valid token), 422 (a path, query or body value refused), where a body is taken
400 (malformed) and 413 (too large), and on writes 429 (the per-member write limits); and points the
``default`` response at a problem. The statuses a view gives for its own rules (403, 404,
409, 429) are written in its description, and documented explicitly with
``@blp.alt_response(404, response="NOT_FOUND")`` where a client must plan for them.
"""
from __future__ import annotations

from apispec import BasePlugin
from marshmallow import INCLUDE, Schema, fields

PROBLEM_JSON = "application/problem+json"


class ProblemSchema(Schema):
    """An RFC 9457 problem: ``code`` is stable snake_case, ``errors`` maps fields to messages (422)."""

    class Meta:
        # A problem may carry more members (``retry_after``, ``checks``...): RFC 9457 allows them.
        unknown = INCLUDE

    type = fields.String(required=True, metadata={"description": "URI naming the problem type"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "Stable snake_case problem code"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "Validation failures by field (422 only)"})


class CommonProblems(BasePlugin):
    """Document the 401 and 422 every authenticated operation may answer, the 400 and 413 of
    every operation that takes a body (shared/http/body.py), and the 429 of every write (the
    per-member write limits, shared/http/ratelimit.py)."""

    def __init__(self, prefix: str = "/v1/"):
        self.prefix = prefix
        self._path_has_parameters = False

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        # Runs after flask-smorest's Flask plugin has added the path's own parameters.
        self._path_has_parameters = bool(parameters)
        return None

    def operation_helper(self, path=None, operations=None, **kwargs):
        if not path or not path.startswith(self.prefix):
            return
        for method, operation in (operations or {}).items():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", "UNAUTHORIZED")
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
                responses.setdefault("429", "TOO_MANY_REQUESTS")
            if self._path_has_parameters or operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("422", "UNPROCESSABLE_ENTITY")
            if operation.get("requestBody"):
                responses.setdefault("400", "BAD_REQUEST")
                responses.setdefault("413", "REQUEST_ENTITY_TOO_LARGE")
