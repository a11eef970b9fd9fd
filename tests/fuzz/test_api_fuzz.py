"""Whatever a client sends, each service answers as its OpenAPI document says: never a 5xx, only
documented status codes and content types, and bodies that match the documented schemas."""
from __future__ import annotations

import importlib

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

# Few examples per operation keep the suite under a minute on two cores; derandomize makes a run
# reproducible (the same cases every time), so a failure here is a failure on every machine.
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def document(service: str):
    """The service's OpenAPI document, read from its app. It does not depend on settings: the
    calls themselves go to the app wired to the session's (``service_app``)."""
    app = importlib.import_module(f"services.{service}.app").create_app({"TESTING": True})
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


connections = document("connections")
follows = document("follows")
feed = document("feed")
# The live stream holds its connection for minutes: tests/integration/test_notifications_stream.py covers it.
notifications = document("notifications").exclude(path="/v1/notifications/stream")
profiles = document("profiles")
# The same for the conversations stream: tests/integration/test_messaging_stream.py covers it.
messaging = document("messaging").exclude(path="/v1/conversations/stream")


@connections.parametrize()
@FUZZ
def test_connections_api(case, service_app, fuzzer):
    case.call_and_validate(app=service_app("connections"), headers=fuzzer, checks=CHECKS)


@follows.parametrize()
@FUZZ
def test_follows_api(case, service_app, fuzzer):
    case.call_and_validate(app=service_app("follows"), headers=fuzzer, checks=CHECKS)


@feed.parametrize()
@FUZZ
def test_feed_api(case, service_app, fuzzer):
    case.call_and_validate(app=service_app("feed"), headers=fuzzer, checks=CHECKS)


@notifications.parametrize()
@FUZZ
def test_notifications_api(case, service_app, fuzzer):
    case.call_and_validate(app=service_app("notifications"), headers=fuzzer, checks=CHECKS)


@profiles.parametrize()
@FUZZ
def test_profiles_api(case, service_app, fuzzer):
    case.call_and_validate(app=service_app("profiles"), headers=fuzzer, checks=CHECKS)


@messaging.parametrize()
@FUZZ
def test_messaging_api(case, service_app, fuzzer):
    case.call_and_validate(app=service_app("messaging"), headers=fuzzer, checks=CHECKS)
