"""Browser pages of the allowed origins may call the APIs (CORS, ``RAPPORT_CORS_ORIGINS``);
a preflight is answered before authentication (no I/O: the probe view touches no store)."""
from __future__ import annotations

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint

from shared.auth import mint_token
from shared.http import caller, create_service_app
from shared.settings import load_settings

SECRET = "unit-test-secret-of-at-least-32-bytes!"
PAGE = "https://app.rapport.example"

blp = Blueprint("probe", __name__, url_prefix="/v1")


@blp.route("/probe")
class Probe(MethodView):
    @blp.response(201)
    def post(self):
        return {"caller": caller()}, 201, {"Location": "/v1/probe"}


def _client(cors_origins: str):
    settings = load_settings({}, jwt_secret=SECRET, cors_origins=cors_origins,
                             store_urls={"probe": "redis://127.0.0.1:1/0"}, write_rate_limits="")  # no store
    return create_service_app("probe", [blp], settings=settings).test_client()


@pytest.fixture(scope="module")
def client():
    return _client(f"{PAGE}, https://other.rapport.example")


def _preflight(client, origin=PAGE):
    return client.options("/v1/probe", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization,idempotency-key"})


def test_a_preflight_is_answered_204_without_a_token(client):
    response = _preflight(client)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"Authorization", "Content-Type", "Idempotency-Key", "If-None-Match", "Last-Event-ID"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_a_preflight_from_another_origin_gets_no_permission(client):
    response = _preflight(client, origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers


def test_an_answer_to_an_allowed_origin_names_it_and_exposes_the_headers_clients_read(client):
    token = mint_token("ada", SECRET)
    response = client.post("/v1/probe", headers={"Origin": PAGE, "Authorization": f"Bearer {token}"})
    assert response.status_code == 201
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "ETag", "Link", "Retry-After", "RateLimit", "RateLimit-Policy", "X-Request-Id"} <= exposed
    assert "Origin" in response.headers["Vary"]


def test_an_error_to_an_allowed_origin_is_readable_by_the_page(client):
    response = client.post("/v1/probe", headers={"Origin": PAGE})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == PAGE


def test_an_answer_to_another_origin_carries_no_cors_headers(client):
    response = client.post("/v1/probe", headers={"Origin": "https://evil.example"})
    assert not [h for h in response.headers.keys() if h.startswith("Access-Control-")]


def test_without_the_setting_no_answer_carries_cors_headers_and_a_preflight_needs_a_token():
    client = _client("")
    assert _preflight(client).status_code == 401
    response = client.post("/v1/probe", headers={"Origin": PAGE})
    assert not [h for h in response.headers.keys() if h.startswith("Access-Control-")]


def test_a_star_allows_every_origin():
    response = _preflight(_client("*"), origin="http://localhost:5173")
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"


def test_a_preflight_answer_carries_the_caller_s_request_id(client):
    response = client.options("/v1/probe", headers={"Origin": PAGE, "Access-Control-Request-Method": "POST",
                                                    "X-Request-Id": "pre-1"})
    assert response.headers["X-Request-Id"] == "pre-1"
