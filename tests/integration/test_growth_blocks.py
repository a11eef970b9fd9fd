"""Blocking (PRODUCT.md, Network), across every service a block reaches: connections removes
the connection and the invitations, follows removes and refuses follows, feed hides each from
the other. Driven through each service's HTTP API with the real workers and Kafka."""
from __future__ import annotations

import pytest

from tests.support.http import assert_problem
from tests.support.infra import eventually, events_of, read_topic


@pytest.fixture
def api(apps):
    return apps("connections")


def blocked_members(api, auth, member):
    response = api.get("/v1/blocks", headers=auth(member))
    assert response.status_code == 200, response.json
    return [b["member"] for b in response.json["items"]]


def feed_authors(apps, auth, member):
    response = apps("feed").get("/v1/feed", headers=auth(member))
    assert response.status_code == 200, response.json
    return {post["author"] for post in response.json["items"]}


def following(apps, auth, follower, followee) -> bool:
    return apps("follows").get(f"/v1/following/{followee}", headers=auth(follower)).json["following"]


def test_a_block_removes_the_connection_the_follows_and_the_feed_both_ways(apps, api, auth, workers, settings,
                                                                            unique, connect):
    workers("connections"), workers("follows"), workers("feed")
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    eventually(lambda: following(apps, auth, ada, grace) and following(apps, auth, grace, ada),
               message="the automatic follows of a new connection")
    for author in (ada, grace):
        posted = apps("feed").post("/v1/posts", json={"text": f"hello from {author}", "visibility": "connections"},
                                   headers=auth(author))
        assert posted.status_code == 201, posted.json
    eventually(lambda: grace in feed_authors(apps, auth, ada) and ada in feed_authors(apps, auth, grace),
               message="each sees the other's connections-only post")

    response = api.put(f"/v1/blocks/{grace}", headers=auth(ada))

    assert response.status_code == 204
    assert api.get(f"/v1/relationships/{grace}", headers=auth(ada)).json["connected"] is False
    assert api.get(f"/v1/members/{grace}/connections/count", headers=auth(ada)).json == {"count": 0}
    eventually(lambda: not following(apps, auth, ada, grace) and not following(apps, auth, grace, ada),
               message="follows removed both ways")
    eventually(lambda: grace not in feed_authors(apps, auth, ada) and ada not in feed_authors(apps, auth, grace),
               message="each hidden from the other's feed")
    events = read_topic(settings, "connections.events",
                        lambda evs: events_of(evs, "block.added", blocker=ada, blocked=grace))
    [removed] = events_of(events, "connection.removed", remover=ada, other=grace)
    assert removed.data["reason"] == "blocked"


def test_a_blocked_member_cannot_follow_and_gets_only_a_plain_refusal(apps, api, auth, workers, unique):
    workers("connections"), workers("follows")
    ada, grace = unique("ada"), unique("grace")
    assert apps("follows").put(f"/v1/following/{ada}", headers=auth(grace)).status_code == 201

    assert api.put(f"/v1/blocks/{grace}", headers=auth(ada)).status_code == 204

    eventually(lambda: not following(apps, auth, grace, ada), message="the follow removed")
    for follower, followee in ((grace, ada), (ada, grace)):
        refused = apps("follows").put(f"/v1/following/{followee}", headers=auth(follower))
        assert_problem(refused, 403, "follow_refused")
        assert "block" not in refused.json["detail"].lower()


def test_a_block_refuses_invitations_both_ways_with_the_same_neutral_refusal(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    assert api.put(f"/v1/blocks/{grace}", headers=auth(ada)).status_code == 204

    by_blocked = api.post("/v1/invitations", json={"invitee": ada}, headers=auth(grace))
    by_blocker = api.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada))

    assert_problem(by_blocked, 403, "invitation_refused")
    assert_problem(by_blocker, 403, "invitation_refused")
    assert "block" not in by_blocked.json["detail"].lower()


def test_a_block_removes_pending_invitations_both_ways_and_tells_the_blocked_nothing(api, auth, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    from_grace = api.post("/v1/invitations", json={"invitee": ada}, headers=auth(grace)).json
    to_linus = api.post("/v1/invitations", json={"invitee": linus}, headers=auth(ada)).json

    api.put(f"/v1/blocks/{grace}", headers=auth(ada))
    api.put(f"/v1/blocks/{linus}", headers=auth(ada))

    received = api.get("/v1/invitations?direction=received", headers=auth(ada)).json["items"]
    sent = api.get("/v1/invitations?direction=sent", headers=auth(ada)).json["items"]
    assert from_grace["id"] not in [i["id"] for i in received]
    assert to_linus["id"] not in [i["id"] for i in sent]
    assert api.get("/v1/invitations?direction=received", headers=auth(linus)).json["items"] == []
    assert_problem(api.post(f"/v1/invitations/{from_grace['id']}/accept", headers=auth(ada)),
                   409, "invitation_not_pending")
    # To grace, her invitation looks exactly as an ignored one does: still pending.
    assert api.get(f"/v1/invitations/{from_grace['id']}", headers=auth(grace)).json["status"] == "pending"


def test_blocking_is_idempotent_listed_newest_first_and_only_for_the_blocker(api, auth, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    assert api.put(f"/v1/blocks/{grace}", headers=auth(ada)).status_code == 204
    assert api.put(f"/v1/blocks/{linus}", headers=auth(ada)).status_code == 204
    assert api.put(f"/v1/blocks/{grace}", headers=auth(ada)).status_code == 204

    assert blocked_members(api, auth, ada) == [linus, grace]
    assert blocked_members(api, auth, grace) == []
    first = api.get("/v1/blocks?limit=1", headers=auth(ada)).json
    rest = api.get(f"/v1/blocks?cursor={first['next_cursor']}", headers=auth(ada)).json
    assert [b["member"] for b in first["items"] + rest["items"]] == [linus, grace]
    assert_problem(api.put(f"/v1/blocks/{ada}", headers=auth(ada)), 422, "cannot_block_self")
    assert_problem(api.put("/v1/blocks/not%20an%20id", headers=auth(ada)), 422, "invalid_member_id")


def test_unblocking_restores_nothing_but_allows_inviting_and_following_again(apps, api, auth, workers, settings,
                                                                            unique, connect):
    workers("connections"), workers("follows")
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    api.put(f"/v1/blocks/{grace}", headers=auth(ada))

    assert api.delete(f"/v1/blocks/{grace}", headers=auth(ada)).status_code == 204
    assert api.delete(f"/v1/blocks/{grace}", headers=auth(ada)).status_code == 204

    assert blocked_members(api, auth, ada) == []
    assert api.get(f"/v1/relationships/{grace}", headers=auth(ada)).json["connected"] is False
    read_topic(settings, "connections.events", lambda evs: events_of(evs, "block.removed", blocker=ada, blocked=grace))
    eventually(lambda: apps("follows").put(f"/v1/following/{ada}", headers=auth(grace)).status_code == 201,
               message="follows allowed again once block.removed is handled")
    assert not following(apps, auth, ada, grace)  # nothing restored
    assert api.post("/v1/invitations", json={"invitee": ada}, headers=auth(grace)).status_code == 201
