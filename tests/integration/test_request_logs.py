"""An API's logs as an operator reads them: one JSON object a line, gunicorn's own lines
included, and one line per request naming its request id, route, status and duration."""
from __future__ import annotations

import json
import uuid

import requests

from bench.support import served, token_for


def test_every_request_an_api_answers_is_one_json_line_with_its_request_id_route_status_and_duration(
        settings, tmp_path):
    missing, invalid = f"req-{uuid.uuid4().hex}", f"req-{uuid.uuid4().hex}"
    member = f"ada-{uuid.uuid4().hex[:8]}"
    logs = tmp_path / "follows-api.log"
    with logs.open("wb") as sink, \
            served("follows", settings, workers=1, env={"RAPPORT_LOG_LEVEL": "INFO"}, stderr=sink) as (base, _pid):
        assert requests.get(f"{base}/v1/no-such-thing", headers={"X-Request-Id": missing}).status_code == 404
        answer = requests.patch(f"{base}/v1/settings", json={"no_such_field": 1},
                              headers={"X-Request-Id": invalid, "Authorization": f"Bearer {token_for(settings, member)}"})
        assert answer.status_code == 422, answer.text
    text = logs.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line, gunicorn's too, is JSON
    assert all(line.get("service") == "follows" for line in lines), text
    assert any(line["event"].startswith("Starting gunicorn") for line in lines), text
    [not_found] = [line for line in lines if line.get("request_id") == missing and line["event"] == "request"]
    assert not_found["status"] == 404 and not_found["route"] == "unmatched" and not_found["method"] == "GET"
    assert not_found["member"] is None and not_found["duration_ms"] >= 0
    [refused] = [line for line in lines if line.get("request_id") == invalid and line["event"] == "request"]
    assert refused["status"] == 422 and refused["route"] == "/v1/settings" and refused["method"] == "PATCH"
    assert refused["member"] == member and refused["duration_ms"] > 0


def test_every_line_of_a_gevent_api_is_json_with_its_service_the_warnings_of_its_workers_included(
        settings, tmp_path):
    logs = tmp_path / "notifications-api.log"
    with logs.open("wb") as sink, \
            served("notifications", settings, workers=1, env={"RAPPORT_LOG_LEVEL": "INFO"}, stderr=sink) as (base, _):
        assert requests.get(f"{base}/healthz").status_code == 200
    text = logs.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(line.get("service") == "notifications" for line in lines), text
    assert any(line["event"] == "request" and line["route"] == "/healthz" for line in lines), text
