"""HTTP conventions of every service, against the real Redis: Location on a 201, ETag and
If-None-Match → 304 on reads of one resource, Link (RFC 8288) beside a page's next_cursor."""
from __future__ import annotations

import re

import pytest

from tests.support.infra import next_millisecond


def _link_next(response) -> str | None:
    match = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


# --- Location ------------------------------------------------------------------------------

def test_a_sent_invitation_answers_201_with_its_location_which_reads_it(apps, auth, unique):
    api, ada, grace = apps("connections"), unique("ada"), unique("grace")
    created = api.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada))
    assert created.status_code == 201
    assert created.headers["Location"] == f"/v1/invitations/{created.json['id']}"
    assert api.get(created.headers["Location"], headers=auth(ada)).json == created.json


def test_a_replayed_invitation_names_the_same_location(apps, auth, unique):
    api, ada, grace = apps("connections"), unique("ada"), unique("grace")
    headers = {**auth(ada), "Idempotency-Key": unique("key")}
    first = api.post("/v1/invitations", json={"invitee": grace}, headers=headers)
    again = api.post("/v1/invitations", json={"invitee": grace}, headers=headers)
    assert again.status_code == 201 and again.headers["Location"] == first.headers["Location"]


def test_a_location_carries_the_gateway_prefix(apps, auth, unique):
    response = apps("connections").post("/v1/invitations", json={"invitee": unique("grace")},
                                        headers={**auth(unique("ada")), "X-Forwarded-Prefix": "/connections"})
    assert response.headers["Location"] == f"/connections/v1/invitations/{response.json['id']}"


def test_an_introduction_answers_201_with_its_location(apps, auth, unique, connect):
    api, ada, grace, carol = apps("connections"), unique("ada"), unique("grace"), unique("carol")
    connect(ada, carol)
    connect(carol, grace)
    created = api.post("/v1/introductions", json={"target": grace, "via": carol}, headers=auth(ada))
    assert created.status_code == 201, created.json
    assert created.headers["Location"] == f"/v1/introductions/{created.json['id']}"
    assert api.get(created.headers["Location"], headers=auth(ada)).status_code == 200


def test_a_new_endorsement_names_the_endorsee_s_skills_and_a_repeat_no_location(apps, auth, unique, connect):
    api, ada, grace = apps("connections"), unique("ada"), unique("grace")
    connect(ada, grace)
    created = api.post(f"/v1/members/{grace}/endorsements", json={"skill": "Python"}, headers=auth(ada))
    assert created.status_code == 201 and created.headers["Location"] == f"/v1/members/{grace}/endorsements"
    again = api.post(f"/v1/members/{grace}/endorsements", json={"skill": "Python"}, headers=auth(ada))
    assert again.status_code == 200 and "Location" not in again.headers


def test_a_post_answers_201_with_its_location_which_reads_it(apps, auth, unique):
    api, ada = apps("feed"), unique("ada")
    created = api.post("/v1/posts", json={"text": "hello"}, headers=auth(ada))
    assert created.status_code == 201
    assert created.headers["Location"] == f"/v1/posts/{created.json['id']}"
    assert api.get(created.headers["Location"], headers=auth(ada)).json["id"] == created.json["id"]


def test_a_comment_answers_201_with_the_post_s_comments_as_its_location(apps, auth, unique):
    api, ada = apps("feed"), unique("ada")
    post = api.post("/v1/posts", json={"text": "hello"}, headers=auth(ada)).json
    created = api.post(f"/v1/posts/{post['id']}/comments", json={"text": "hi"}, headers=auth(ada))
    assert created.status_code == 201
    assert created.headers["Location"] == f"/v1/posts/{post['id']}/comments"
    listed = api.get(created.headers["Location"], headers=auth(ada)).json["items"]
    assert created.json["id"] in [c["id"] for c in listed]


def test_a_new_follow_answers_201_with_its_location_and_a_repeat_200_without(apps, auth, unique):
    api, ada, grace = apps("follows"), unique("ada"), unique("grace")
    created = api.put(f"/v1/following/{grace}", headers=auth(ada))
    assert created.status_code == 201 and created.headers["Location"] == f"/v1/following/{grace}"
    again = api.put(f"/v1/following/{grace}", headers=auth(ada))
    assert again.status_code == 200 and "Location" not in again.headers


# --- ETag and If-None-Match ----------------------------------------------------------------

def _assert_conditional(api, path, headers):
    first = api.get(path, headers=headers)
    assert first.status_code == 200, first.json
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    repeat = api.get(path, headers={**headers, "If-None-Match": etag})
    assert repeat.status_code == 304 and repeat.get_data() == b""
    assert repeat.headers["ETag"] == etag
    other = api.get(path, headers={**headers, "If-None-Match": 'W/"something-else"'})
    assert other.status_code == 200 and other.json == first.json
    return etag


def test_reads_of_one_resource_answer_304_to_a_current_etag(apps, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation = apps("connections").post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).json
    post = apps("feed").post("/v1/posts", json={"text": "hello"}, headers=auth(ada)).json
    apps("follows").put(f"/v1/following/{grace}", headers=auth(ada))
    reads = [("connections", f"/v1/invitations/{invitation['id']}"), ("connections", f"/v1/relationships/{grace}"),
             ("connections", "/v1/settings"), ("connections", f"/v1/members/{grace}/connections/count"),
             ("follows", "/v1/settings"), ("follows", f"/v1/following/{grace}"),
             ("follows", f"/v1/members/{grace}/follow-stats"), ("feed", f"/v1/posts/{post['id']}"),
             ("notifications", "/v1/preferences"), ("notifications", "/v1/notifications/unread-count")]
    for service, path in reads:
        _assert_conditional(apps(service), path, auth(ada))


def test_a_changed_resource_gets_a_new_etag_and_the_old_one_no_longer_matches(apps, auth, unique):
    api, ada = apps("connections"), unique("ada")
    etag = _assert_conditional(api, "/v1/settings", auth(ada))
    assert api.patch("/v1/settings", json={"connections_visibility": "only_me"}, headers=auth(ada)).status_code == 200
    changed = api.get("/v1/settings", headers={**auth(ada), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.json == {"connections_visibility": "only_me"}


def test_a_liked_post_is_no_longer_the_tagged_one(apps, auth, unique):
    api, ada = apps("feed"), unique("ada")
    post = api.post("/v1/posts", json={"text": "hello"}, headers=auth(ada)).json
    etag = api.get(f"/v1/posts/{post['id']}", headers=auth(ada)).headers["ETag"]
    api.put(f"/v1/posts/{post['id']}/like", headers=auth(ada))
    assert api.get(f"/v1/posts/{post['id']}", headers={**auth(ada), "If-None-Match": etag}).status_code == 200


def test_an_error_carries_no_etag(apps, auth, unique):
    response = apps("feed").get("/v1/posts/nope", headers=auth(unique("ada")))
    assert response.status_code == 404 and "ETag" not in response.headers


# --- Link ----------------------------------------------------------------------------------

def test_a_page_with_more_links_to_the_next_page_with_its_cursor_and_the_same_query(apps, auth, unique):
    api, ada = apps("feed"), unique("ada")
    for text in ("one", "two", "three"):
        next_millisecond()
        api.post("/v1/posts", json={"text": text}, headers=auth(ada))
    first = api.get(f"/v1/members/{ada}/posts?limit=2", headers=auth(ada))
    link = _link_next(first)
    assert link is not None and link.startswith(f"/v1/members/{ada}/posts?")
    assert "limit=2" in link and f"cursor={first.json['next_cursor']}" in link
    second = api.get(link, headers=auth(ada))
    assert [p["text"] for p in second.json["items"]] == ["one"]
    assert second.json["next_cursor"] is None and "Link" not in second.headers


def test_the_home_feed_links_to_its_next_page(apps, auth, unique, workers):
    api, ada = apps("feed"), unique("ada")
    for text in ("one", "two"):
        next_millisecond()
        api.post("/v1/posts", json={"text": text}, headers=auth(ada))
    first = api.get("/v1/feed?limit=1", headers=auth(ada))
    assert first.json["next_cursor"]
    link = _link_next(first)
    assert link == f"/v1/feed?limit=1&cursor={first.json['next_cursor']}"
    assert [p["text"] for p in api.get(link, headers=auth(ada)).json["items"]] == ["one"]


def test_a_link_carries_the_gateway_prefix(apps, auth, unique):
    api, ada, grace, carol = apps("connections"), unique("ada"), unique("grace"), unique("carol")
    for invitee in (grace, carol):
        api.post("/v1/invitations", json={"invitee": invitee}, headers=auth(ada))
    page = api.get("/v1/invitations?direction=sent&limit=1",
                   headers={**auth(ada), "X-Forwarded-Prefix": "/connections"})
    link = _link_next(page)
    assert link.startswith("/connections/v1/invitations?") and "direction=sent" in link


@pytest.mark.parametrize("service,path", [("follows", "/v1/members/{ada}/following"),
                                          ("notifications", "/v1/notifications")])
def test_a_last_page_carries_no_link(apps, auth, unique, service, path):
    ada = unique("ada")
    response = apps(service).get(path.format(ada=ada), headers=auth(ada))
    assert response.status_code == 200 and response.json["next_cursor"] is None
    assert "Link" not in response.headers
