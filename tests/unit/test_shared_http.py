"""Every error a client can meet is RFC 9457 problem+json with a stable code (no I/O needed)."""
from __future__ import annotations

import io
import time

import jwt
import pytest
import redis
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields

from shared.auth import mint_token
from shared.http import caller, create_service_app
from shared.problems import Conflict, Forbidden, TooManyRequests
from shared.settings import load_settings

SECRET = "unit-test-secret-of-at-least-32-bytes!"


class Body(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True)


blp = Blueprint("probe", __name__, url_prefix="/v1")


@blp.route("/probe/<member>")
class Probe(MethodView):
    @blp.arguments(Body)
    @blp.response(201, Body)
    def post(self, body, member):
        if body["name"] == "conflict":
            raise Conflict("Already there.", code="already_there")
        if body["name"] == "forbidden":
            raise Forbidden("Not yours.", code="not_yours")
        if body["name"] == "slow-down":
            raise TooManyRequests("Too many.", code="limit_reached", retry_at="2026-12-01T00:00:00Z")
        if body["name"] == "crash":
            raise RuntimeError("boom")
        if body["name"] == "store-loading":
            raise redis.BusyLoadingError("Redis is loading the dataset in memory")
        if body["name"] == "store-down":
            raise redis.ConnectionError("Connection refused")
        return {"name": f"{caller()}→{member}"}


@pytest.fixture(scope="module")
def client():
    # A store URL that is never dialled: redis-py connects lazily, no view here touches it, and
    # the write limits (counted in the store) are off.
    settings = load_settings({}, jwt_secret=SECRET, store_urls={"probe": "redis://127.0.0.1:1/0"},
                             write_rate_limits="")
    return create_service_app("probe", [blp], settings=settings, test_config={"TESTING": False}).test_client()


def headers(member="ada", secret=SECRET, **claims):
    return {"Authorization": f"Bearer {mint_token(member, secret)}"}


def assert_problem(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["code"] == code
    assert body["title"] and body["detail"] and body["type"].endswith(code)
    return body


def test_a_valid_request_reaches_the_view_as_the_caller(client):
    response = client.post("/v1/probe/grace", json={"name": "x"}, headers=headers())
    assert response.status_code == 201 and response.get_json() == {"name": "ada→grace"}


def test_without_a_token_the_answer_is_401(client):
    assert_problem(client.post("/v1/probe/grace", json={"name": "x"}), 401, "missing_token")


def test_a_token_signed_with_another_secret_is_401(client):
    assert_problem(client.post("/v1/probe/grace", json={"name": "x"}, headers=headers(secret="another-secret-of-at-least-32-bytes!")),
                   401, "invalid_token")


def test_an_expired_token_is_401(client):
    token = jwt.encode({"sub": "ada", "exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    response = client.post("/v1/probe/grace", json={"name": "x"}, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "token_expired")


def test_a_token_without_exp_is_401(client):
    token = jwt.encode({"sub": "ada"}, SECRET, algorithm="HS256")
    response = client.post("/v1/probe/grace", json={"name": "x"}, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "invalid_token")


def test_a_malformed_member_id_in_the_path_is_422(client):
    body = assert_problem(client.post("/v1/probe/no%20spaces", json={"name": "x"}, headers=headers()),
                          422, "invalid_member_id")
    assert "member" in body["errors"]


def test_an_unknown_field_is_422_naming_it(client):
    body = assert_problem(client.post("/v1/probe/grace", json={"name": "x", "extra": 1}, headers=headers()),
                          422, "validation_failed")
    assert body["errors"] == {"extra": ["Unknown field."]}


def test_malformed_json_is_400(client):
    response = client.post("/v1/probe/grace", data="{nope", content_type="application/json", headers=headers())
    assert_problem(response, 400, "malformed_body")


@pytest.mark.parametrize("name,status,code", [("conflict", 409, "already_there"), ("forbidden", 403, "not_yours"),
                                              ("slow-down", 429, "limit_reached")])
def test_typed_errors_become_problems_with_their_code(client, name, status, code):
    assert_problem(client.post("/v1/probe/grace", json={"name": name}, headers=headers()), status, code)


def test_extra_problem_fields_are_in_the_body(client):
    response = client.post("/v1/probe/grace", json={"name": "slow-down"}, headers=headers())
    assert response.get_json()["retry_at"] == "2026-12-01T00:00:00Z"


def test_an_unknown_path_is_404_and_a_wrong_method_405(client):
    assert_problem(client.get("/v1/nowhere", headers=headers()), 404, "not_found")
    response = client.delete("/v1/probe/grace", headers=headers())
    assert_problem(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_an_unexpected_error_is_a_500_problem_never_an_html_page(client):
    assert_problem(client.post("/v1/probe/grace", json={"name": "crash"}, headers=headers()), 500, "internal_error")


@pytest.mark.parametrize("name", ["store-loading", "store-down"])
def test_a_store_that_is_down_or_loading_is_a_503_to_retry_not_a_500(client, name):
    response = client.post("/v1/probe/grace", json={"name": name}, headers=headers())
    assert_problem(response, 503, "store_unavailable")
    assert response.headers["Retry-After"] == "1"


def test_a_problem_extension_cannot_shadow_the_http_status():
    with pytest.raises(TypeError, match="status"):
        Conflict("No longer pending.", code="invitation_not_pending", status="withdrawn")


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert response.status_code == 200 and response.headers["X-Request-Id"] == "abc123"


def test_health_metrics_and_the_openapi_document_need_no_token(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "service": "probe"}
    assert b"rapport_http_requests_total" in client.get("/metrics").data
    spec = client.get("/openapi.json").get_json()
    assert "/v1/probe/{member}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


# --- bodies the services could not hold: a 400 or 413 problem before any view runs ------------

@pytest.mark.parametrize("raw", [
    '{"name": ' + "[" * 1000 + "]" * 1000 + "}",    # deeper than the recursion limit
    '{"name": ' + "[" * 40 + "]" * 40 + "}",        # deeper than any schema nests
    '{"name": "\\ud800"}',                           # a lone surrogate: no UTF-8 store can hold it
    '{"name": "x", "n": ' + "9" * 100_000 + "}",     # past Python's int parsing limit
    '{"name": "x", "n": ' + "9" * 31 + "}",
    '{"name": NaN}',
    '{"name": "x", "n": 1e999}',
    '{"\\udfff": "x"}',
])
def test_json_the_services_cannot_hold_is_a_400_malformed_body(client, raw):
    response = client.post("/v1/probe/grace", data=raw, content_type="application/json", headers=headers())
    assert_problem(response, 400, "malformed_body")


def test_a_body_announced_over_the_limit_is_a_413_before_it_is_read(client):
    class Endless:
        """A body that fails the test if anything reads it."""
        def read(self, *args):
            raise AssertionError("the body was read")

    limit = load_settings({}).max_body_bytes
    environ = {"CONTENT_LENGTH": str(100 * 1024 * 1024), "CONTENT_TYPE": "application/json",
               "wsgi.input": Endless()}
    response = client.post("/v1/probe/grace", environ_overrides=environ, headers=headers())
    body = assert_problem(response, 413, "body_too_large")
    assert body["max_bytes"] == limit


def test_a_chunked_body_over_the_limit_is_a_413(client):
    limit = load_settings({}).max_body_bytes
    raw = b'{"name": "' + b"x" * limit + b'"}'
    response = client.post("/v1/probe/grace", input_stream=io.BytesIO(raw), content_type="application/json",
                           headers={**headers(), "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})  # as gunicorn says of a chunked body
    assert response.request.content_length is None
    assert_problem(response, 413, "body_too_large")


def test_a_body_at_the_limit_is_read():
    settings = load_settings({}, jwt_secret=SECRET, store_urls={"probe": "redis://127.0.0.1:1/0"}, max_body_bytes=64,
                             write_rate_limits="")  # no store: no write limits
    small = create_service_app("probe", [blp], settings=settings).test_client()
    raw = '{"name": "' + "x" * (64 - 12) + '"}'
    assert len(raw) == 64
    assert small.post("/v1/probe/grace", data=raw, content_type="application/json",
                      headers=headers()).status_code == 201
    assert_problem(small.post("/v1/probe/grace", data=raw + " ", content_type="application/json", headers=headers()),
                   413, "body_too_large")


def test_the_document_says_an_operation_with_a_body_may_answer_400_and_413_as_problems(client):
    spec = client.get("/openapi.json").get_json()
    responses = spec["paths"]["/v1/probe/{member}"]["post"]["responses"]
    for status in ("400", "413"):
        ref = responses[status]["$ref"].rsplit("/", 1)[1]
        assert "application/problem+json" in spec["components"]["responses"][ref]["content"], status


def test_a_service_refuses_to_start_with_the_published_secret_unless_local():
    from shared.settings import InsecureSettings

    with pytest.raises(InsecureSettings):
        create_service_app("probe", [], settings=load_settings({}, store_urls={"probe": "redis://127.0.0.1:1/0"}))
    assert create_service_app("probe", [], settings=load_settings(
        {"RAPPORT_ENV": "local"}, store_urls={"probe": "redis://127.0.0.1:1/0"}))


def test_the_ratelimit_policy_header_names_every_write_limit():
    from limits import parse_many

    from shared.http.ratelimit import policy_header

    assert policy_header(parse_many("30/second;900/minute")) == '"writes-1s";q=30;w=1, "writes-60s";q=900;w=60'


def test_request_latency_is_counted_by_route_template_method_and_status_never_by_path(client):
    from prometheus_client import REGISTRY

    def count(route, method, status):
        return REGISTRY.get_sample_value("rapport_http_request_seconds_count", {
            "service": "probe", "endpoint": "probe.Probe" if route != "unmatched" else "unmatched",
            "route": route, "method": method, "status": status}) or 0

    before = count("/v1/probe/<member>", "POST", "201"), count("/v1/probe/<member>", "POST", "409")
    client.post("/v1/probe/grace", json={"name": "x"}, headers=headers())
    client.post("/v1/probe/alan", json={"name": "conflict"}, headers=headers())
    unmatched = count("unmatched", "GET", "404")
    client.get("/v1/no-such-path")
    assert (count("/v1/probe/<member>", "POST", "201"), count("/v1/probe/<member>", "POST", "409")) == \
        (before[0] + 1, before[1] + 1)
    assert count("unmatched", "GET", "404") == unmatched + 1


def test_a_method_name_of_the_clients_own_is_counted_as_other_not_as_a_series_of_its_own(client):
    from prometheus_client import REGISTRY

    def count(method):
        return REGISTRY.get_sample_value("rapport_http_requests_total", {
            "service": "probe", "method": method, "endpoint": "unmatched", "status": "405"}) or 0

    before = count("other")
    for name in ("BREW", "X-ANYTHING-1", "X-ANYTHING-2"):
        client.open("/v1/probe/grace", method=name, headers=headers())
    assert count("other") == before + 3
    assert count("BREW") == count("X-ANYTHING-1") == 0
