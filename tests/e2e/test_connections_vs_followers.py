"""The article's comparison table, played over HTTP against the running stack.

Ada has one connection, Grace (by invitation, accepted), and one follower, Linus (no
approval asked). Margaret is neither. Side by side, what may each of them see and do?

| Connections                                | Followers                             |
|--------------------------------------------|---------------------------------------|
| Two-way, mutually agreed                   | One-way: only you follow them         |
| Full profile access                        | Limited profile access                |
| Messaging                                  | No messaging                          |
| Endorsements and recommendations           | No endorsements or recommendations    |
| See all posts and activity                 | Only public posts and activity        |
"""
from __future__ import annotations

import uuid

import pytest

from tests.support.infra import eventually

WAIT = 20.0  # seconds an event may take to cross the stack (outbox → Kafka → worker) on a busy machine


def feed_ids(member) -> list[str]:
    response = member.get("feed", "/v1/feed", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [post["id"] for post in response.json()["items"]]


def notifications(member) -> list[dict]:
    response = member.get("notifications", "/v1/notifications", params={"limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def follows(member, other) -> bool:
    response = member.get("follows", f"/v1/following/{other.id}")
    assert response.status_code == 200, response.text
    return response.json()["following"]


def relationship(member, other) -> dict:
    response = member.get("connections", f"/v1/relationships/{other.id}")
    assert response.status_code == 200, response.text
    return response.json()


def connect(inviter, invitee, message=None) -> dict:
    """``inviter`` invites, ``invitee`` accepts; returns the accepted invitation."""
    sent = inviter.post("connections", "/v1/invitations", json={"invitee": invitee.id, "message": message})
    assert sent.status_code == 201, sent.text
    accepted = invitee.post("connections", f"/v1/invitations/{sent.json()['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    return accepted.json()


def publish(author, text, visibility) -> str:
    response = author.post("feed", "/v1/posts", json={"text": text, "visibility": visibility})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def network(stack):
    """Ada, her connection Grace, her follower Linus, and Margaret who is neither."""
    suffix = uuid.uuid4().hex[:8]
    ada, grace, linus, margaret = (stack.member(f"{name}-{suffix}") for name in ("ada", "grace", "linus", "margaret"))
    connect(grace, ada, message="We met at the analytical engines meetup")
    followed = linus.put("follows", f"/v1/following/{ada.id}")
    assert followed.status_code == 201, followed.text
    # Connecting makes both follow each other; that reaches follows through connections.events.
    eventually(lambda: follows(grace, ada) and follows(ada, grace), WAIT, message="automatic follows of a connection")
    public = publish(ada, "Notes on the analytical engine, for everyone", "public")
    private = publish(ada, "Draft for my network only", "connections")
    eventually(lambda: {public, private} <= set(feed_ids(grace)), WAIT, message="both posts in Grace's feed")
    eventually(lambda: public in feed_ids(linus), WAIT, message="the public post in Linus's feed")
    return {"ada": ada, "grace": grace, "linus": linus, "margaret": margaret, "public": public, "private": private}


def what_they_get(network, member) -> dict:
    """One column of the comparison table: what ``member`` may see and do of Ada's."""
    ada, public, private = network["ada"], network["public"], network["private"]
    rel = relationship(member, ada)
    her_posts = member.get("feed", f"/v1/members/{ada.id}/posts").json()["items"]
    return {
        "connected": rel["connected"],
        "degree": rel["degree"],
        "follows her": follows(member, ada),
        "she follows back": follows(ada, member),
        "profile access": rel["profile_access"],
        "can message": rel["can_message"],
        "public post in feed": public in feed_ids(member),
        "connections-only post in feed": private in feed_ids(member),
        "opens the connections-only post": member.get("feed", f"/v1/posts/{private}").status_code,
        "her posts they may list": sorted(p["visibility"] for p in her_posts),
        "her followers list": member.get("follows", f"/v1/members/{ada.id}/followers").status_code,
    }


def test_a_connection_sees_and_may_do_everything_a_follower_only_the_public_part(network):
    grace, linus, margaret = network["grace"], network["linus"], network["margaret"]

    table = {who: what_they_get(network, m) for who, m in (("connection", grace), ("follower", linus),
                                                            ("neither", margaret))}

    assert table["connection"] == {
        "connected": True, "degree": 1, "follows her": True, "she follows back": True,
        "profile access": "full", "can message": True,
        "public post in feed": True, "connections-only post in feed": True,
        "opens the connections-only post": 200, "her posts they may list": ["connections", "public"],
        "her followers list": 200,
    }
    assert table["follower"] == {
        "connected": False, "degree": None, "follows her": True, "she follows back": False,
        "profile access": "limited", "can message": False,
        "public post in feed": True, "connections-only post in feed": False,
        "opens the connections-only post": 404, "her posts they may list": ["public"],
        "her followers list": 403,
    }
    assert table["neither"] == {**table["follower"], "follows her": False, "public post in feed": False}


def test_a_connection_is_two_way_and_a_follow_one_way(network):
    ada, grace, linus = network["ada"], network["grace"], network["linus"]

    assert relationship(ada, grace)["connected"] and relationship(grace, ada)["connected"]
    assert not relationship(ada, linus)["connected"] and not relationship(linus, ada)["connected"]
    assert follows(linus, ada) and not follows(ada, linus)


def test_counts_are_public_but_the_followers_list_is_for_the_member_and_their_connections(network):
    ada, grace, linus, margaret = network["ada"], network["grace"], network["linus"], network["margaret"]

    for anyone in (grace, linus, margaret):
        assert anyone.get("connections", f"/v1/members/{ada.id}/connections/count").json() == {"count": 1}
        stats = anyone.get("follows", f"/v1/members/{ada.id}/follow-stats").json()
        assert (stats["followers"], stats["following"]) == (2, 1)

    listed = {f["member"] for f in grace.get("follows", f"/v1/members/{ada.id}/followers").json()["items"]}
    assert listed == {grace.id, linus.id}
    refused = linus.get("follows", f"/v1/members/{ada.id}/following")
    assert refused.status_code == 403
    assert refused.headers["Content-Type"].startswith("application/problem+json")


def test_both_may_engage_with_public_posts_only_a_connection_with_connections_only_ones(network):
    ada, grace, linus = network["ada"], network["grace"], network["linus"]
    public, private = network["public"], network["private"]

    assert linus.put("feed", f"/v1/posts/{public}/like").status_code == 204
    assert linus.post("feed", f"/v1/posts/{public}/comments", json={"text": "Fascinating"}).status_code == 201
    assert grace.put("feed", f"/v1/posts/{public}/like").status_code == 204
    assert grace.put("feed", f"/v1/posts/{private}/like").status_code == 204
    assert grace.post("feed", f"/v1/posts/{private}/comments", json={"text": "Send me the draft"}).status_code == 201

    assert linus.put("feed", f"/v1/posts/{private}/like").status_code == 404
    assert linus.post("feed", f"/v1/posts/{private}/comments", json={"text": "?"}).status_code == 404
    assert linus.post("feed", "/v1/posts", json={"reshare_of": public}).status_code == 201
    assert grace.post("feed", "/v1/posts", json={"reshare_of": private}).status_code in (403, 422), \
        "a connections-only post cannot be reshared"

    post = ada.get("feed", f"/v1/posts/{public}").json()
    assert (post["likes"], post["comments"], post["reshares"]) == (2, 1, 1)

    def liked():
        return [n for n in notifications(ada) if n["type"] == "post_liked" and n["object"] == public]

    grouped = eventually(lambda: [n for n in liked() if n["actor_count"] == 2], WAIT,
                         message="one grouped like notification")
    assert set(grouped[0]["actors"]) == {grace.id, linus.id} and len(liked()) == 1


def test_invitations_and_explicit_follows_notify_automatic_follows_do_not(network):
    ada, grace, linus = network["ada"], network["grace"], network["linus"]

    mine = eventually(lambda: {n["type"] for n in notifications(ada)} >= {"invitation_received", "new_follower"}
                      and notifications(ada), WAIT, message="Ada's notifications")
    invitation = next(n for n in mine if n["type"] == "invitation_received")
    assert invitation["actors"] == [grace.id]
    assert "analytical engines meetup" in invitation["summary"]
    assert [n["actors"] for n in mine if n["type"] == "new_follower"] == [[linus.id]], \
        "only Linus's explicit follow notifies, not the automatic follow of a new connection"

    accepted = eventually(lambda: [n for n in notifications(grace) if n["type"] == "invitation_accepted"], WAIT,
                          message="Grace told her invitation was accepted")
    assert accepted[0]["actors"] == [ada.id]
    assert not [n for n in notifications(grace) if n["type"] == "new_follower"]


def test_only_a_connection_may_endorse_a_skill(network):
    ada, grace, linus = network["ada"], network["grace"], network["linus"]

    endorsed = grace.post("connections", f"/v1/members/{ada.id}/endorsements", json={"skill": "mathematics"})
    refused = linus.post("connections", f"/v1/members/{ada.id}/endorsements", json={"skill": "mathematics"})

    assert endorsed.status_code == 201, f"a connection endorses a skill: {endorsed.status_code} {endorsed.text}"
    assert refused.status_code == 403, f"a follower may not endorse: {refused.status_code} {refused.text}"
    listed = ada.get("connections", f"/v1/members/{ada.id}/endorsements")
    assert listed.status_code == 200, listed.text
    assert "mathematics" in listed.text
    eventually(lambda: [n for n in notifications(ada) if n["type"] == "endorsement_received"], WAIT,
               message="Ada notified of the endorsement")


def test_unfollowing_a_connection_keeps_the_connection_and_empties_the_feed_of_them(member):
    ada, grace = member("ada"), member("grace")
    connect(ada, grace)
    eventually(lambda: follows(grace, ada), WAIT, message="automatic follow")
    post = publish(ada, "Only for my connections", "connections")
    eventually(lambda: post in feed_ids(grace), WAIT, message="post in Grace's feed")

    assert grace.delete("follows", f"/v1/following/{ada.id}").status_code == 204

    eventually(lambda: post not in feed_ids(grace), WAIT, message="the unfollowed connection's post leaves the feed")
    assert relationship(grace, ada)["connected"] and relationship(grace, ada)["can_message"]
    assert grace.get("feed", f"/v1/posts/{post}").status_code == 200  # still a connection: may see it

    assert grace.put("follows", f"/v1/following/{ada.id}").status_code == 201
    eventually(lambda: post in feed_ids(grace), WAIT, message="following again puts the posts back")


def test_removing_a_connection_removes_the_follows_both_ways_and_the_private_posts(member):
    ada, grace = member("ada"), member("grace")
    connect(ada, grace)
    eventually(lambda: follows(grace, ada) and follows(ada, grace), WAIT, message="automatic follows")
    post = publish(ada, "Between us", "connections")
    eventually(lambda: post in feed_ids(grace), WAIT, message="post in Grace's feed")

    assert ada.delete("connections", f"/v1/connections/{grace.id}").status_code == 204

    eventually(lambda: not follows(grace, ada) and not follows(ada, grace), WAIT, message="follows removed")
    eventually(lambda: post not in feed_ids(grace), WAIT, message="the post leaves the feed")
    assert grace.get("feed", f"/v1/posts/{post}").status_code == 404
    assert relationship(grace, ada)["can_message"] is False
    assert not [n for n in notifications(grace) if n["type"] not in ("invitation_received", "invitation_accepted")], \
        "the other side is not notified of a removal"


def test_a_member_may_accept_followers_from_connections_only(member):
    ada, grace, linus, margaret = member("ada"), member("grace"), member("linus"), member("margaret")
    connect(ada, grace)
    assert linus.put("follows", f"/v1/following/{ada.id}").status_code == 201
    eventually(lambda: follows(grace, ada), WAIT, message="automatic follow")

    changed = ada.patch("follows", "/v1/settings", json={"followers": "connections"})
    assert changed.status_code == 200, changed.text

    refused = margaret.put("follows", f"/v1/following/{ada.id}")
    assert refused.status_code == 403 and refused.json()["code"] == "followers_restricted"
    assert follows(linus, ada), "existing followers stay when the setting changes"
    assert grace.delete("follows", f"/v1/following/{ada.id}").status_code == 204
    assert grace.put("follows", f"/v1/following/{ada.id}").status_code == 201, "a connection may still follow"


def test_the_connections_list_follows_its_owners_setting(network):
    ada, grace, margaret = network["ada"], network["grace"], network["margaret"]
    assert margaret.get("connections", f"/v1/members/{ada.id}/connections").status_code == 200  # default: everyone

    assert ada.patch("connections", "/v1/settings", json={"connections_visibility": "connections"}).status_code == 200

    assert margaret.get("connections", f"/v1/members/{ada.id}/connections").status_code == 403
    seen = grace.get("connections", f"/v1/members/{ada.id}/connections")
    assert seen.status_code == 200 and [c["member"] for c in seen.json()["items"]] == [grace.id]
