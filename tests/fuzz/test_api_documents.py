"""What every service's OpenAPI document says about errors, which the fuzzer holds them to."""
from __future__ import annotations

import importlib

import pytest

from shared.http.openapi import PROBLEM_JSON

SERVICES = ("connections", "follows", "feed", "notifications", "profiles",
            "messaging")


def _document(service: str) -> dict:
    app = importlib.import_module(f"services.{service}.app").create_app({"TESTING": True})
    return app.test_client().get("/openapi.json").get_json()


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "patch", "delete"}:
                yield path, method, operation, bool(item.get("parameters"))


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_documents_401_and_a_problem_for_any_other_error(service):
    spec = _document(service)
    for path, method, operation, _ in _operations(spec):
        if not path.startswith("/v1/"):
            continue
        assert {"401", "default"} <= set(operation["responses"]), f"{method.upper()} {path}"


@pytest.mark.parametrize("service", SERVICES)
def test_an_operation_that_takes_input_documents_422(service):
    for path, method, operation, path_params in _operations(_document(service)):
        # Headers such as If-None-Match are not input that can be refused.
        inputs = [p for p in operation.get("parameters", []) if p.get("in") != "header"]
        if path.startswith("/v1/") and (path_params or inputs or operation.get("requestBody")):
            assert "422" in operation["responses"], f"{method.upper()} {path}"


@pytest.mark.parametrize("service", SERVICES)
def test_error_responses_are_documented_as_problem_json(service):
    responses = _document(service)["components"]["responses"]
    assert {"DEFAULT_ERROR", "UNAUTHORIZED", "UNPROCESSABLE_ENTITY"} <= set(responses)
    for name in responses:  # only the error responses referenced are in the document
        assert list(responses[name]["content"]) == [PROBLEM_JSON], name
        assert responses[name]["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}


def test_a_422_names_each_wrong_item_of_a_list_field_with_string_messages(apps, auth, unique):
    response = apps("notifications").patch("/v1/preferences", headers=auth(unique("ada")),
                                           json={"muted_types": ["new_follower", "telepathy"]})

    assert response.status_code == 422 and response.mimetype == PROBLEM_JSON
    errors = response.get_json()["errors"]
    assert list(errors) == ["muted_types.1"]
    assert all(isinstance(m, str) for m in errors["muted_types.1"])
