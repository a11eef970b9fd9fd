"""The follows API: the one-way relationship as PRODUCT.md states it, through HTTP with the
real Redis and Kafka (rules that need connections events are in test_follows_connections.py)."""
from __future__ import annotations

import pytest

from tests.support.http import assert_problem
from tests.support.infra import events_of, next_millisecond, read_topic


@pytest.fixture
def follows(apps, workers):
    workers("follows")  # its relay publishes what the outbox holds
    return apps("follows")


def status(follows, auth, follower, followee):
    response = follows.get(f"/v1/following/{followee}", headers=auth(follower))
    assert response.status_code == 200, response.json
    return response.json


def names(page):
    return [item["member"] for item in page["items"]]


def test_following_needs_no_approval_and_is_one_way(follows, auth, unique):
    ada, grace = unique("ada"), unique("grace")

    response = follows.put(f"/v1/following/{grace}", headers=auth(ada))

    assert response.status_code == 201
    assert response.json["following"] is True and response.json["notify_on_post"] is False
    assert status(follows, auth, ada, grace) == {**response.json}
    assert status(follows, auth, grace, ada) == {"follower": grace, "followee": ada, "following": False,
                                                 "notify_on_post": False, "since": None}


def test_following_again_is_the_same_follow(follows, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    first = follows.put(f"/v1/following/{grace}", headers=auth(ada))
    again = follows.put(f"/v1/following/{grace}", headers=auth(ada), json={})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    assert follows.get(f"/v1/members/{grace}/follow-stats", headers=auth(ada)).json["followers"] == 1


def test_post_alerts_are_chosen_on_follow_and_changed_by_following_again(follows, auth, settings, unique):
    ada, grace = unique("ada"), unique("grace")

    created = follows.put(f"/v1/following/{grace}", headers=auth(ada), json={"notify_on_post": True})
    kept = follows.put(f"/v1/following/{grace}", headers=auth(ada))
    switched_off = follows.put(f"/v1/following/{grace}", headers=auth(ada), json={"notify_on_post": False})

    assert (created.status_code, kept.status_code, switched_off.status_code) == (201, 200, 200)
    assert (created.json["notify_on_post"], kept.json["notify_on_post"], switched_off.json["notify_on_post"]) \
        == (True, True, False)
    assert status(follows, auth, ada, grace)["notify_on_post"] is False
    events = read_topic(settings, "follows.events", lambda evs: events_of(evs, "follow.updated", follower=ada))
    assert [e.data["notify_on_post"] for e in events_of(events, "follow.updated", follower=ada)] == [False]
    assert events_of(events, "follow.created", follower=ada)[0].data["notify_on_post"] is True


def test_unfollowing_is_idempotent_and_emits_one_event(follows, auth, settings, unique):
    ada, grace = unique("ada"), unique("grace")
    follows.put(f"/v1/following/{grace}", headers=auth(ada), json={"notify_on_post": True})

    first = follows.delete(f"/v1/following/{grace}", headers=auth(ada))
    second = follows.delete(f"/v1/following/{grace}", headers=auth(ada))
    never = follows.delete(f"/v1/following/{unique('linus')}", headers=auth(ada))

    assert (first.status_code, second.status_code, never.status_code) == (204, 204, 204)
    assert status(follows, auth, ada, grace)["following"] is False
    assert follows.get(f"/v1/members/{grace}/follow-stats", headers=auth(grace)).json["followers"] == 0
    events = read_topic(settings, "follows.events", lambda evs: events_of(evs, "follow.removed", follower=ada))
    removed = events_of(events, "follow.removed", follower=ada)
    assert [(e.data["followee"], e.data["reason"]) for e in removed] == [(grace, "explicit")]
    # Following again starts afresh: no post alerts carried over.
    assert follows.put(f"/v1/following/{grace}", headers=auth(ada)).json["notify_on_post"] is False


def test_counts_are_public_and_the_ratio_is_null_without_followees(follows, auth, unique):
    ada, grace, linus, stranger = unique("ada"), unique("grace"), unique("linus"), unique("stranger")
    for follower in (ada, linus):
        follows.put(f"/v1/following/{grace}", headers=auth(follower))
    follows.put(f"/v1/following/{ada}", headers=auth(grace))

    assert follows.get(f"/v1/members/{grace}/follow-stats", headers=auth(stranger)).json == \
        {"followers": 2, "following": 1, "ratio": 2.0}
    assert follows.get(f"/v1/members/{linus}/follow-stats", headers=auth(stranger)).json == \
        {"followers": 0, "following": 1, "ratio": 0.0}
    assert follows.get(f"/v1/members/{stranger}/follow-stats", headers=auth(stranger)).json == \
        {"followers": 0, "following": 0, "ratio": None}


def test_a_member_sees_their_own_lists_newest_first_in_stable_pages(follows, auth, unique):
    grace = unique("grace")
    fans = [unique(f"fan{i}") for i in range(5)]
    for fan in fans:
        next_millisecond()
        assert follows.put(f"/v1/following/{grace}", headers=auth(fan)).status_code == 201

    first = follows.get(f"/v1/members/{grace}/followers?limit=2", headers=auth(grace)).json
    late = unique("late")
    follows.put(f"/v1/following/{grace}", headers=auth(late))  # a write between pages
    second = follows.get(f"/v1/members/{grace}/followers?limit=2&cursor={first['next_cursor']}",
                         headers=auth(grace)).json
    third = follows.get(f"/v1/members/{grace}/followers?limit=2&cursor={second['next_cursor']}",
                        headers=auth(grace)).json

    assert names(first) + names(second) + names(third) == list(reversed(fans))
    assert third["next_cursor"] is None
    assert names(follows.get(f"/v1/members/{grace}/followers?limit=1", headers=auth(grace)).json) == [late]
    following = follows.get(f"/v1/members/{fans[0]}/following", headers=auth(fans[0])).json
    assert names(following) == [grace] and following["items"][0]["since"].endswith("Z")


def test_a_stranger_cannot_see_the_lists_but_sees_the_counts(follows, auth, unique):
    ada, grace, stranger = unique("ada"), unique("grace"), unique("stranger")
    follows.put(f"/v1/following/{grace}", headers=auth(ada))

    for path in (f"/v1/members/{grace}/followers", f"/v1/members/{ada}/following"):
        assert_problem(follows.get(path, headers=auth(stranger)), 403, "follow_lists_private")
    assert follows.get(f"/v1/members/{grace}/follow-stats", headers=auth(stranger)).json["followers"] == 1


def test_with_the_connections_setting_others_cannot_follow_and_existing_followers_stay(
        follows, auth, settings, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    follows.put(f"/v1/following/{grace}", headers=auth(ada))
    assert follows.get("/v1/settings", headers=auth(grace)).json == {"followers": "everyone"}

    changed = follows.patch("/v1/settings", headers=auth(grace), json={"followers": "connections"})
    unchanged = follows.patch("/v1/settings", headers=auth(grace), json={"followers": "connections"})

    assert changed.json == unchanged.json == {"followers": "connections"}
    assert follows.get("/v1/settings", headers=auth(grace)).json == {"followers": "connections"}
    assert_problem(follows.put(f"/v1/following/{grace}", headers=auth(linus)), 403, "followers_restricted")
    assert status(follows, auth, linus, grace)["following"] is False
    assert follows.put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 200  # still a follower
    events = read_topic(settings, "follows.events", lambda evs: events_of(evs, "settings.updated", member=grace))
    assert [e.data["followers"] for e in events_of(events, "settings.updated", member=grace)] == ["connections"]

    follows.patch("/v1/settings", headers=auth(grace), json={"followers": "everyone"})
    assert follows.put(f"/v1/following/{grace}", headers=auth(linus)).status_code == 201


def test_bad_input_gets_a_problem_and_changes_nothing(follows, auth, settings, unique):
    ada, grace = unique("ada"), unique("grace")

    cases = [
        (follows.put(f"/v1/following/{ada}", headers=auth(ada)), 422, "cannot_follow_self"),
        (follows.delete(f"/v1/following/{ada}", headers=auth(ada)), 422, "cannot_follow_self"),
        (follows.put("/v1/following/not%20a%20member", headers=auth(ada)), 422, "invalid_member_id"),
        (follows.put(f"/v1/following/{'x' * 65}", headers=auth(ada)), 422, "invalid_member_id"),
        (follows.put(f"/v1/following/{grace}", headers=auth(ada), json={"notify_on_post": "maybe"}), 422, "validation_failed"),
        (follows.put(f"/v1/following/{grace}", headers=auth(ada), json={"notify": True}), 422, "validation_failed"),
        (follows.put(f"/v1/following/{grace}", headers=auth(ada), data="{not json",
                     content_type="application/json"), 400, "malformed_body"),
        (follows.put(f"/v1/following/{grace}"), 401, "missing_token"),
        (follows.get(f"/v1/members/{ada}/followers?limit=0", headers=auth(ada)), 422, "validation_failed"),
        (follows.get(f"/v1/members/{ada}/followers?limit=101", headers=auth(ada)), 422, "validation_failed"),
        (follows.get(f"/v1/members/{ada}/following?cursor=garbage!", headers=auth(ada)), 422, "invalid_cursor"),
        (follows.get("/v1/members/bad%24id/follow-stats", headers=auth(ada)), 422, "invalid_member_id"),
        (follows.patch("/v1/settings", headers=auth(ada), json={"followers": "nobody"}), 422, "validation_failed"),
        (follows.patch("/v1/settings", headers=auth(ada), json={"followers": "everyone", "x": 1}), 422, "validation_failed"),
        (follows.patch("/v1/settings", headers=auth(ada), json={}), 422, "validation_failed"),
    ]

    for response, status_code, code in cases:
        assert_problem(response, status_code, code)
    assert status(follows, auth, ada, grace)["following"] is False
    assert follows.get(f"/v1/members/{ada}/follow-stats", headers=auth(ada)).json["following"] == 0
    assert follows.get("/v1/settings", headers=auth(ada)).json == {"followers": "everyone"}
    # The outbox is published in order: once a later valid follow is out, anything the bad
    # requests had emitted would be out too.
    follows.put(f"/v1/following/{grace}", headers=auth(ada))
    events = read_topic(settings, "follows.events", lambda evs: events_of(evs, "follow.created", follower=ada))
    about_ada = [e for e in events if ada in (e.data.get("follower"), e.data.get("followee"), e.data.get("member"))]
    assert [(e.name, e.data["followee"]) for e in about_ada] == [("follow.created", grace)]


def test_a_follow_whose_request_stopped_before_projecting_reaches_the_followees_followers_through_the_worker(
        follows, auth, unique, monkeypatch):
    from services.follows import following
    from tests.support.infra import eventually

    ada, grace = unique("ada"), unique("grace")
    with monkeypatch.context() as patched:
        # As if the request died right after the follower's script: only the worker projects.
        patched.setattr(following, "project_edge", lambda store, follower, followee, version, since: False)
        assert follows.put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201
        assert status(follows, auth, ada, grace)["following"]  # the follower's side: at once
        eventually(lambda: names(follows.get(f"/v1/members/{grace}/followers", headers=auth(grace)).json) == [ada],
                   message="the followee's followers")
        assert follows.delete(f"/v1/following/{grace}", headers=auth(ada)).status_code == 204
        eventually(lambda: follows.get(f"/v1/members/{grace}/follow-stats", headers=auth(grace)).json["followers"] == 0,
                   message="the follower gone from the count")
