"""Each service's OpenAPI document is complete enough for tools: valid, every operation named,
its problems and headers documented (no I/O: the apps' store clients are never dialled)."""
from __future__ import annotations

import importlib
from functools import cache

import pytest
from openapi_spec_validator import validate

from shared.http.openapi import PROBLEM_JSON
from shared.settings import SERVICES, load_settings

METHODS = {"get", "put", "post", "patch", "delete"}
WRITES = {"put", "post", "patch", "delete"}


@cache
def document(service: str) -> dict:
    settings = load_settings({"RAPPORT_ENV": "local"})
    app = importlib.import_module(f"services.{service}.app").create_app({"TESTING": True}, settings=settings)
    return app.test_client().get("/openapi.json").get_json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def op(service: str, method: str, path: str) -> dict:
    return document(service)["paths"][path][method]


def resolve(spec: dict, response: dict) -> dict:
    if "$ref" in response:
        return spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


@pytest.mark.parametrize("service", SERVICES)
def test_the_document_is_valid_openapi(service):
    validate(document(service))


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_has_a_unique_camel_case_operation_id(service):
    ids = [o.get("operationId") for _, _, o in operations(document(service))]
    assert all(ids) and len(ids) == len(set(ids)), ids
    assert all(i[0].islower() and "_" not in i for i in ids), ids


def test_operation_ids_name_what_the_operation_does():
    assert op("connections", "post", "/v1/invitations")["operationId"] == "sendInvitation"
    assert op("connections", "post", "/v1/invitations/{invitation_id}/accept")["operationId"] == "acceptInvitation"
    assert op("follows", "get", "/v1/members/{member_id}/followers")["operationId"] == "listFollowers"
    assert op("feed", "get", "/v1/feed")["operationId"] == "getFeed"


@pytest.mark.parametrize("service,path", [("connections", "/v1/invitations"), ("connections", "/v1/introductions"),
                                          ("feed", "/v1/posts"), ("feed", "/v1/posts/{post_id}/comments"),
                                          ("profiles", "/v1/members/{member_id}/recommendations"),
                                          ("messaging", "/v1/conversations"),
                                          ("messaging", "/v1/conversations/{conversation_id}/messages")])
def test_the_creating_posts_that_honour_idempotency_key_document_it_and_its_409(service, path):
    operation = op(service, "post", path)
    names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert names == ["Idempotency-Key"]
    assert "409" in operation["responses"]


@pytest.mark.parametrize("service", SERVICES)
def test_no_other_operation_documents_idempotency_key(service):
    honoured = {"/v1/invitations", "/v1/introductions", "/v1/posts", "/v1/posts/{post_id}/comments",
                "/v1/members/{member_id}/recommendations", "/v1/conversations", "/v1/conversations/{conversation_id}/messages"}
    for path, method, operation in operations(document(service)):
        if "Idempotency-Key" in [p.get("name") for p in operation.get("parameters", [])]:
            assert method == "post" and path in honoured, path


@pytest.mark.parametrize("service", SERVICES)
def test_every_authenticated_write_documents_401_422_429_and_every_v1_operation_503(service):
    for path, method, operation in operations(document(service)):
        if not path.startswith("/v1/"):
            continue
        assert {"401", "503", "default"} <= set(operation["responses"]), (method, path)
        if method in WRITES:
            assert {"422", "429"} <= set(operation["responses"]), (method, path)


@pytest.mark.parametrize("service,method,path,statuses", [
    ("connections", "post", "/v1/invitations", {"403", "409", "429"}),
    ("connections", "get", "/v1/invitations/{invitation_id}", {"404"}),
    ("connections", "post", "/v1/invitations/{invitation_id}/accept", {"403", "404", "409"}),
    ("connections", "delete", "/v1/connections/{member}", {"404"}),
    ("connections", "get", "/v1/members/{member_id}/connections", {"403"}),
    ("connections", "post", "/v1/introductions/{introduction_id}/forward", {"403", "404", "409"}),
    ("connections", "post", "/v1/members/{member_id}/endorsements", {"403"}),
    ("follows", "put", "/v1/following/{member}", {"403"}),
    ("follows", "get", "/v1/members/{member_id}/followers", {"403"}),
    ("feed", "get", "/v1/posts/{post_id}", {"404"}),
    ("feed", "delete", "/v1/posts/{post_id}", {"403", "404"}),
    ("notifications", "post", "/v1/notifications/{notification_id}/read", {"404"}),
    ("messaging", "post", "/v1/conversations", {"403", "404", "409"}),
    ("messaging", "post", "/v1/conversations/{conversation_id}/messages", {"403", "404", "409"}),
    ("messaging", "get", "/v1/conversations/{conversation_id}", {"404"}),
    ("messaging", "get", "/v1/conversations/{conversation_id}/messages", {"404"}),
    ("messaging", "post", "/v1/conversations/{conversation_id}/read", {"404"}),
    ("messaging", "delete", "/v1/conversations/{conversation_id}", {"404"}),
])
def test_an_operation_documents_the_problems_its_rules_answer(service, method, path, statuses):
    responses = op(service, method, path)["responses"]
    assert statuses <= set(responses)
    spec = document(service)
    for status in statuses:
        assert list(resolve(spec, responses[status])["content"]) == [PROBLEM_JSON]


@pytest.mark.parametrize("service", SERVICES)
def test_every_answer_documents_x_request_id_a_201_location_and_a_429_or_503_retry_after(service):
    spec = document(service)
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            headers = resolve(spec, response).get("headers", {})
            assert "X-Request-Id" in headers, (method, path, status)
            if status == "201":
                assert "Location" in headers, (method, path)
            if status in ("429", "503"):
                assert "Retry-After" in headers, (method, path, status)


@pytest.mark.parametrize("service", SERVICES)
def test_a_page_documents_its_link_header_and_a_read_of_one_resource_its_etag(service):
    spec = document(service)
    for path, method, operation in operations(spec):
        ok = operation["responses"].get("200", {})
        if any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
            assert "Link" in ok["headers"], path
        if any(p.get("name") == "If-None-Match" for p in operation.get("parameters", [])):
            assert "ETag" in ok["headers"] and "304" in operation["responses"], path


def test_reads_of_one_resource_document_if_none_match():
    for service, path in [("connections", "/v1/invitations/{invitation_id}"), ("connections", "/v1/settings"),
                          ("connections", "/v1/relationships/{member}"), ("follows", "/v1/settings"),
                          ("feed", "/v1/posts/{post_id}"), ("notifications", "/v1/preferences")]:
        assert "If-None-Match" in [p["name"] for p in op(service, "get", path)["parameters"]], path


@pytest.mark.parametrize("service", SERVICES)
def test_servers_name_the_service_and_the_gateway_prefix(service):
    settings = load_settings({"RAPPORT_ENV": "local"})
    urls = [s["url"] for s in document(service)["servers"]]
    assert urls == [f"http://localhost:{settings.ports[service]}", f"http://localhost:8080/{service}"]


def test_servers_follow_the_settings():
    settings = load_settings({"RAPPORT_ENV": "local", "RAPPORT_FEED_BASE_URL": "https://feed.internal:9000",
                              "RAPPORT_GATEWAY_URL": "https://api.rapport.example"})
    app = importlib.import_module("services.feed.app").create_app({"TESTING": True}, settings=settings)
    servers = app.test_client().get("/openapi.json").get_json()["servers"]
    assert [s["url"] for s in servers] == ["https://feed.internal:9000", "https://api.rapport.example/feed"]


def test_a_relationship_s_invitation_is_a_nullable_typed_object_and_degree_a_shared_enum():
    schemas = document("connections")["components"]["schemas"]
    properties = schemas["Relationship"]["properties"]
    assert properties["invitation"] == {"allOf": [{"$ref": "#/components/schemas/RelationshipInvitation"}],
                                        "nullable": True}
    assert set(schemas["RelationshipInvitation"]["properties"]) == {"id", "direction"}
    assert properties["degree"]["allOf"] == [{"$ref": "#/components/schemas/Degree"}]
    assert properties["degree"]["nullable"] is True
    assert schemas["Degree"]["type"] == "integer" and schemas["Degree"]["enum"] == [1, 2, 3]


def test_the_stream_documents_its_200_as_server_sent_events():
    ok = op("notifications", "get", "/v1/notifications/stream")["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]


@pytest.mark.parametrize("service", SERVICES)
def test_health_readiness_and_metrics_are_documented_without_a_token(service):
    paths = document(service)["paths"]
    assert paths["/healthz"]["get"]["operationId"] == "getHealth"
    assert paths["/readyz"]["get"]["operationId"] == "getReadiness"
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert all(paths[p]["get"]["security"] == [] for p in ("/healthz", "/readyz", "/metrics"))


@pytest.mark.parametrize("service", ("connections", "follows", "feed", "notifications", "messaging"))
def test_every_write_documents_the_403_of_a_caller_without_a_profile(service):
    missing = [(method, path) for path, method, o in operations(document(service))
               if path.startswith("/v1/") and method in WRITES and "403" not in o["responses"]]
    assert missing == []


@pytest.mark.parametrize("service, method, path", [
    ("connections", "post", "/v1/invitations"), ("connections", "post", "/v1/introductions"),
    ("connections", "post", "/v1/members/{member_id}/endorsements"), ("connections", "put", "/v1/blocks/{member}"),
    ("follows", "put", "/v1/following/{member}"), ("messaging", "post", "/v1/conversations"),
])
def test_every_operation_acting_towards_a_member_documents_404(service, method, path):
    assert "404" in op(service, method, path)["responses"]
