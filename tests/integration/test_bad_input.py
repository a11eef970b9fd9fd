"""Input a hostile client sends, through each service's app on the real Redis: a 4xx problem
with its code, never a 500, and nothing written."""
from __future__ import annotations

import base64

import pytest

from shared.settings import SERVICES
from tests.support.http import assert_problem

# base64 of [NaN,"x"]: json.loads reads NaN, and Redis refuses it as a score (a 500 once).
FORGED_CURSOR = base64.urlsafe_b64encode(b'[NaN,"x"]').decode().rstrip("=")

# Every paged list, by service: "{me}" is the caller, "{post}" one of their posts.
PAGED = {
    "connections": ["/v1/invitations", "/v1/members/{me}/connections", "/v1/members/{other}/mutual-connections",
                    "/v1/suggestions", "/v1/members/{me}/endorsements", "/v1/blocks"],
    "follows": ["/v1/members/{me}/followers", "/v1/members/{me}/following"],
    "feed": ["/v1/posts/{post}/comments", "/v1/members/{me}/posts", "/v1/feed"],
    "notifications": ["/v1/notifications"],
    "profiles": ["/v1/recommendations", "/v1/members?q=ada"],
    "messaging": ["/v1/conversations", "/v1/conversations/{conversation}/messages"],
}


def _document_path(path: str) -> str:
    return (path.split("?")[0].replace("{me}", "{member_id}").replace("{other}", "{member_id}")
            .replace("{post}", "{post_id}").replace("{conversation}", "{conversation_id}"))


def test_the_list_of_paged_endpoints_is_every_operation_that_takes_a_cursor(apps):
    for service in SERVICES:
        spec = apps(service).get("/openapi.json").get_json()
        paged = {path for path, operations in spec["paths"].items()
                 if any(p["name"] == "cursor" for p in operations.get("get", {}).get("parameters", []))}
        documented = {p.replace("{id}", "{member_id}") for p in paged}
        assert documented == {_document_path(p) for p in PAGED[service]}, service


@pytest.mark.parametrize("service, path", [(s, p) for s, paths in PAGED.items() for p in paths])
@pytest.mark.parametrize("cursor", [FORGED_CURSOR, "WzFlNDAwLCJ4Il0", "garbage!"])  # ... [1e400,"x"]
def test_a_forged_cursor_on_any_paged_endpoint_is_422_invalid_cursor(apps, auth, unique, service, path, cursor):
    me, other = unique("ada"), unique("grace")
    post = ""
    if "{post}" in path:
        created = apps("feed").post("/v1/posts", json={"text": "hello"}, headers=auth(me))
        assert created.status_code == 201, created.json
        post = created.json["id"]
    url = path.format(me=me, other=other, post=post, conversation="c" * 32)

    response = apps(service).get(f"{url}{'&' if '?' in url else '?'}cursor={cursor}", headers=auth(me))

    assert_problem(response, 422, "invalid_cursor")


# --- text members write -------------------------------------------------------------------

INVISIBLE = ["\u200b", "\u200b\u200d\u2060", "\x00", "\u202e", "\u3164", " \n\t"]


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_post_or_comment_with_nothing_visible_is_422(apps, auth, unique, text):
    feed, ada = apps("feed"), unique("ada")

    body = assert_problem(feed.post("/v1/posts", json={"text": text}, headers=auth(ada)), 422, "validation_failed")
    assert "text" in body["errors"]
    post = feed.post("/v1/posts", json={"text": "visible"}, headers=auth(ada)).json
    body = assert_problem(feed.post(f"/v1/posts/{post['id']}/comments", json={"text": text}, headers=auth(ada)),
                          422, "validation_failed")
    assert "text" in body["errors"]
    assert [p["id"] for p in feed.get(f"/v1/members/{ada}/posts", headers=auth(ada)).json["items"]] == [post["id"]]
    assert feed.get(f"/v1/posts/{post['id']}/comments", headers=auth(ada)).json["items"] == []


@pytest.mark.parametrize("text", INVISIBLE)
def test_an_invitation_message_or_introduction_note_with_nothing_visible_is_422(apps, auth, unique, text):
    api, ada, grace, linus = apps("connections"), unique("ada"), unique("grace"), unique("linus")

    cases = [("/v1/invitations", {"invitee": grace, "message": text}, "message"),
             ("/v1/introductions", {"target": linus, "via": grace, "note": text}, "note")]
    for path, body, field in cases:
        problem = assert_problem(api.post(path, json=body, headers=auth(ada)), 422, "validation_failed")
        assert field in problem["errors"], path
    assert api.get("/v1/invitations?direction=sent", headers=auth(ada)).json["items"] == []


@pytest.mark.parametrize("skill", INVISIBLE)
def test_a_skill_with_nothing_visible_is_422_invalid_skill(apps, auth, unique, connect, skill):
    api, ada, grace = apps("connections"), unique("ada"), unique("grace")
    connect(ada, grace)

    response = api.post(f"/v1/members/{grace}/endorsements", json={"skill": skill}, headers=auth(ada))

    assert_problem(response, 422, "invalid_skill")
    assert api.get(f"/v1/members/{grace}/endorsements", headers=auth(ada)).json["items"] == []


# --- JSON the services cannot hold -------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    '{"text": ' + "[" * 1000 + "]" * 1000 + "}",
    '{"text": "\\ud800"}',
    '{"text": "hello \\udc00 world"}',
    '{"text": "x", "visibility": ' + "1" * 100_000 + "}",
])
def test_a_post_of_json_no_store_can_hold_is_400_malformed_body_and_nothing_is_written(apps, auth, unique, raw):
    feed, ada = apps("feed"), unique("ada")

    response = feed.post("/v1/posts", data=raw, content_type="application/json", headers=auth(ada))

    assert_problem(response, 400, "malformed_body")
    assert feed.get(f"/v1/members/{ada}/posts", headers=auth(ada)).json["items"] == []


def test_a_body_over_the_limit_is_413_on_every_service(apps, auth, unique, settings):
    huge = b'{"text": "' + b"x" * settings.max_body_bytes + b'"}'
    for service, method, path in [("connections", "post", "/v1/invitations"), ("follows", "patch", "/v1/settings"),
                                  ("feed", "post", "/v1/posts"), ("notifications", "patch", "/v1/preferences"),
                                  ("profiles", "put", "/v1/profile"), ("messaging", "post", "/v1/conversations")]:
        send = getattr(apps(service), method)
        response = send(path, data=huge, content_type="application/json", headers=auth(unique("ada")))
        assert_problem(response, 413, "body_too_large")


def test_a_limit_of_thousands_of_digits_is_422_naming_it(apps, auth, unique):
    response = apps("feed").get(f"/v1/feed?limit={'9' * 5000}", headers=auth(unique("ada")))

    body = assert_problem(response, 422, "validation_failed")
    assert list(body["errors"]) == ["limit"]
