"""What every service's OpenAPI document says beyond its schemas, in one place.

Every error is RFC 9457 problem+json (``ProblemSchema``). An apispec plugin adds to every
``/v1`` operation the answers any of them can give: 401 (no valid token), 422 (a path, query
or body value refused, and any write), 403 (any write: ``profile_required``), 429 (any
write: rate limits), 503 (the store down),
and where a body is taken 400 (malformed) and 413 (too large); and points the ``default``
response at a problem. Each view names itself and the statuses its own rules give (403,
404, 409...) with ``@operation("sendInvitation", 404, 409, idempotent=True)``.

The same plugin documents the headers: ``X-Request-Id`` on every answer, ``Location`` on a
201, ``Retry-After`` on 429 and 503, ``Link`` on a page, ``ETag``/``If-None-Match``/304 on
the reads ``shared.http.conventions.conditional`` marks, ``Idempotency-Key`` where honoured.
"""
from __future__ import annotations

import http

from apispec import BasePlugin
from flask_smorest import Blueprint
from marshmallow import INCLUDE, Schema, fields

from shared.http.conventions import CONDITIONAL_MARK

PROBLEM_JSON = "application/problem+json"
IDEMPOTENT_MARK = "x-rapport-idempotent"

# flask-smorest registers one response component per HTTP status, named as http.HTTPStatus.
RESPONSE_NAMES = {status.value: status.name for status in http.HTTPStatus}

HEADERS = {
    "X-Request-Id": {"description": "The request's id: the caller's X-Request-Id, or one made for it. "
                                    "Logs name it.", "schema": {"type": "string"}},
    "Location": {"description": "The created resource's URL (path-absolute).", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
    "ETag": {"description": "Weak tag of this representation, for If-None-Match.", "schema": {"type": "string"}},
    "Link": {"description": 'RFC 8288: `<url>; rel="next"` when there is a next page (beside next_cursor).',
             "schema": {"type": "string"}},
}
PARAMETERS = {
    "Idempotency-Key": {"in": "header", "name": "Idempotency-Key", "required": False,
                        "description": "A repeat with the same key (for 24 h) returns the first result; "
                                       "another body with it is 422 idempotency_key_reused, a repeat while "
                                       "the first is served 409 idempotency_key_in_use.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255}},
    "If-None-Match": {"in": "header", "name": "If-None-Match", "required": False,
                      "description": "An ETag of an earlier answer: 304 with no body while it is current.",
                      "schema": {"type": "string"}},
}
WRITES = {"post", "put", "patch", "delete"}


def operation(operation_id: str, *problems: int, idempotent: bool = False):
    """Name an operation (its ``operationId``, what generated clients call it) and document the
    problems its own rules answer; those every operation can meet are added by ``CommonProblems``."""
    doc = {"operationId": operation_id,
           "responses": {str(status): RESPONSE_NAMES[status] for status in problems}}
    if idempotent:
        doc[IDEMPOTENT_MARK] = True
    return Blueprint.doc(**doc)


def register_components(spec) -> None:
    """The headers the plugin refers to, once per document. (Its header parameters are written
    out in each operation: readers that look for a parameter's name find it there.)"""
    for name, header in HEADERS.items():
        spec.components.header(name, dict(header))


def add_headers_to_error_responses(spec) -> None:
    """Every registered error response carries X-Request-Id; a 429 and a 503 Retry-After."""
    # flask-smorest registers them lazily: a component enters the document once referenced.
    registered = {**spec.components.responses_lazy, **spec.components.responses}
    for name, response in registered.items():
        headers = response.setdefault("headers", {})
        headers["X-Request-Id"] = {"$ref": "#/components/headers/X-Request-Id"}
        if name in ("TOO_MANY_REQUESTS", "SERVICE_UNAVAILABLE"):
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}


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
    """Document the 401, 422, 429 and 503 every authenticated operation may answer (and the 403
    ``profile_required`` of every write), the 400 and
    413 of every operation that takes a body (shared/http/body.py), and the headers."""

    def __init__(self, prefix: str = "/v1/"):
        self.prefix = prefix
        self._path_has_parameters = False

    def path_helper(self, path=None, operations=None, parameters=None, **kwargs):
        # Runs after flask-smorest's Flask plugin has added the path's own parameters.
        self._path_has_parameters = bool(parameters)
        return None

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if path and path.startswith(self.prefix):
                self._problems(method, operation, responses)
            if operation.pop(IDEMPOTENT_MARK, False):
                operation.setdefault("parameters", []).append(dict(PARAMETERS["Idempotency-Key"]))
                responses.setdefault("409", "CONFLICT")
            if operation.pop(CONDITIONAL_MARK, False):
                operation.setdefault("parameters", []).append(dict(PARAMETERS["If-None-Match"]))
                responses["304"] = {"description": "Not modified: the tag in If-None-Match is current.",
                                    "headers": {"ETag": "ETag"}}
                ok = responses.get(200, responses.get("200"))  # flask-smorest keys its own by int
                if isinstance(ok, dict):
                    ok.setdefault("headers", {})["ETag"] = "ETag"
            for status, response in responses.items():
                if not isinstance(response, dict):
                    continue  # a component's name: its headers are in the component
                headers = response.setdefault("headers", {})
                headers.setdefault("X-Request-Id", "X-Request-Id")
                if str(status) == "201":
                    headers.setdefault("Location", "Location")
                if str(status) == "200" and _is_page(response):
                    headers.setdefault("Link", "Link")

    def _problems(self, method: str, operation: dict, responses: dict) -> None:
        responses.setdefault("401", "UNAUTHORIZED")
        if (method in WRITES or self._path_has_parameters or operation.get("parameters")
                or operation.get("requestBody")):
            responses.setdefault("422", "UNPROCESSABLE_ENTITY")
        if method in WRITES:
            responses.setdefault("403", "FORBIDDEN")  # profile_required (shared/http/members.py)
            responses.setdefault("429", "TOO_MANY_REQUESTS")
        if operation.get("requestBody"):
            responses.setdefault("400", "BAD_REQUEST")
            responses.setdefault("413", "REQUEST_ENTITY_TOO_LARGE")
        responses.setdefault("503", "SERVICE_UNAVAILABLE")


def _is_page(response: dict) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return isinstance(schema, dict) and str(schema.get("$ref", "")).endswith("Page")


def shared_and_nullable(self, field, ret, **kwargs) -> dict:
    """A marshmallow field's property, as generated clients read it best (apispec attribute
    function, run after apispec's own):

    - a nested schema that may be null is ``allOf: [$ref], nullable`` (apispec writes an
      ``anyOf`` with an untyped object, which clients parse as a bare dict);
    - a field with ``metadata={"component": "Degree"}`` refers to one schema component of
      that name, its type and enum (one enum class in a client, however many fields use it).
    """
    component = field.metadata.get("component")
    if component:
        shared = {k: ret.pop(k) for k in ("type", "enum", "format", "description") if k in ret}
        if shared.get("enum"):
            shared["enum"] = [v for v in shared["enum"] if v is not None]
        if component not in self.spec.components.schemas:
            self.spec.components.schema(component, shared)
        ret.pop("nullable", None)
        ret["allOf"] = [{"$ref": f"#/components/schemas/{component}"}]
        if field.allow_none:
            ret["nullable"] = True
        return {}
    any_of = ret.get("anyOf")
    if any_of and len(any_of) == 2 and any_of[0] == {"type": "object", "nullable": True}:
        ret.pop("anyOf")
        ret["allOf"] = [any_of[1]]
        ret["nullable"] = True
    return {}
