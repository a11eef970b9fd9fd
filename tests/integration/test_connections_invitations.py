"""Invitations, rule by rule (PRODUCT.md, Invitations), through the connections HTTP API
with the real Redis and Kafka."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.connections.app import create_app
from shared.clock import parse_rfc3339
from tests.support.http import assert_problem
from tests.support.infra import events_of, next_millisecond, read_topic


@pytest.fixture
def api(apps):
    return apps("connections")


def invite(api, auth, inviter, invitee, **body):
    return api.post("/v1/invitations", json={"invitee": invitee, **body}, headers=auth(inviter))


def act(api, auth, member, invitation_id, action):
    return api.post(f"/v1/invitations/{invitation_id}/{action}", headers=auth(member))


def pending(api, auth, member, direction):
    response = api.get(f"/v1/invitations?direction={direction}", headers=auth(member))
    assert response.status_code == 200, response.json
    return [(i["inviter"], i["invitee"], i["status"]) for i in response.json["items"]]


def connected(api, auth, a, b):
    return api.get(f"/v1/relationships/{b}", headers=auth(a)).json["connected"]


def near(rfc3339: str, expected: timedelta) -> bool:
    lifts = datetime.fromtimestamp(parse_rfc3339(rfc3339) / 1000, timezone.utc)
    return abs(lifts - (datetime.now(timezone.utc) + expected)) < timedelta(minutes=1)


# --- sending ------------------------------------------------------------------------

def test_an_invitation_is_sent_with_its_message_and_both_sides_see_it_pending(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")

    response = invite(api, auth, ada, grace, message="We met at the compilers meetup.")

    assert response.status_code == 201
    body = response.json
    assert (body["inviter"], body["invitee"], body["status"]) == (ada, grace, "pending")
    assert body["message"] == "We met at the compilers meetup." and body["id"] and body["created_at"]
    assert pending(api, auth, grace, "received") == [(ada, grace, "pending")]
    assert pending(api, auth, ada, "sent") == [(ada, grace, "pending")]
    assert api.get(f"/v1/invitations/{body['id']}", headers=auth(grace)).json == body


def test_the_message_is_optional_and_at_most_300_characters(api, auth, unique):
    ada = unique("ada")
    assert invite(api, auth, ada, unique("grace")).json["message"] is None
    assert invite(api, auth, ada, unique("linus"), message="x" * 300).status_code == 201

    too_long = invite(api, auth, ada, unique("alan"), message="x" * 301)

    assert_problem(too_long, 422, "validation_failed")
    assert "message" in too_long.json["errors"]


def test_a_member_cannot_invite_themselves(api, auth, unique):
    ada = unique("ada")
    assert_problem(invite(api, auth, ada, ada), 422, "cannot_invite_self")
    assert pending(api, auth, ada, "sent") == []


def test_no_second_invitation_while_one_is_pending(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    first = invite(api, auth, ada, grace)

    again = invite(api, auth, ada, grace)

    assert_problem(again, 409, "invitation_pending")
    assert again.json["invitation_id"] == first.json["id"]
    assert pending(api, auth, grace, "received") == [(ada, grace, "pending")]


def test_no_invitation_to_an_existing_connection(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    act(api, auth, grace, invite(api, auth, ada, grace).json["id"], "accept")

    assert_problem(invite(api, auth, ada, grace), 409, "already_connected")
    assert_problem(invite(api, auth, grace, ada), 409, "already_connected")


def test_crossing_invitations_connect_at_once(api, auth, unique, workers, settings):
    workers("connections")
    ada, grace = unique("ada"), unique("grace")
    first = invite(api, auth, ada, grace)

    crossing = invite(api, auth, grace, ada)

    assert crossing.status_code == 201
    assert crossing.json["status"] == "accepted"
    assert (crossing.json["id"], crossing.json["inviter"], crossing.json["invitee"]) == (first.json["id"], ada, grace)
    assert connected(api, auth, ada, grace) and connected(api, auth, grace, ada)
    assert pending(api, auth, ada, "sent") == [] and pending(api, auth, grace, "received") == []
    events = read_topic(settings, "connections.events",
                        lambda evs: events_of(evs, "invitation.accepted", inviter=ada, invitee=grace))
    assert len(events_of(events, "invitation.sent", inviter=ada, invitee=grace)) == 1
    assert events_of(events, "invitation.sent", inviter=grace, invitee=ada) == []


def test_an_idempotency_key_makes_a_retried_invitation_one_invitation(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    headers = {**auth(ada), "Idempotency-Key": unique("key")}

    first = api.post("/v1/invitations", json={"invitee": grace}, headers=headers)
    retry = api.post("/v1/invitations", json={"invitee": grace}, headers=headers)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json == first.json
    assert len(pending(api, auth, grace, "received")) == 1


# --- deciding -----------------------------------------------------------------------

def test_the_invitee_accepts_and_the_two_are_connected(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation = invite(api, auth, ada, grace).json

    accepted = act(api, auth, grace, invitation["id"], "accept")

    assert accepted.status_code == 200
    assert accepted.json["status"] == "accepted" and accepted.json["decided_at"]
    assert connected(api, auth, ada, grace) and connected(api, auth, grace, ada)
    assert pending(api, auth, grace, "received") == [] and pending(api, auth, ada, "sent") == []


def test_only_the_invitee_accepts_the_inviter_gets_403_anyone_else_404(api, auth, unique):
    ada, grace, eve = unique("ada"), unique("grace"), unique("eve")
    invitation_id = invite(api, auth, ada, grace).json["id"]

    assert_problem(act(api, auth, ada, invitation_id, "accept"), 403, "not_invitee")
    assert_problem(act(api, auth, eve, invitation_id, "accept"), 404, "invitation_not_found")
    assert_problem(act(api, auth, eve, invitation_id, "ignore"), 404, "invitation_not_found")
    assert_problem(act(api, auth, eve, invitation_id, "withdraw"), 404, "invitation_not_found")
    assert not connected(api, auth, ada, grace)
    assert pending(api, auth, grace, "received") == [(ada, grace, "pending")]


def test_only_inviter_and_invitee_can_see_an_invitation(api, auth, unique):
    ada, grace, eve = unique("ada"), unique("grace"), unique("eve")
    invitation_id = invite(api, auth, ada, grace).json["id"]

    assert api.get(f"/v1/invitations/{invitation_id}", headers=auth(ada)).status_code == 200
    assert api.get(f"/v1/invitations/{invitation_id}", headers=auth(grace)).status_code == 200
    assert_problem(api.get(f"/v1/invitations/{invitation_id}", headers=auth(eve)), 404, "invitation_not_found")
    assert_problem(api.get("/v1/invitations/no-such-invitation", headers=auth(ada)), 404, "invitation_not_found")


def test_a_decided_invitation_cannot_be_accepted_again(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation_id = invite(api, auth, ada, grace).json["id"]
    act(api, auth, grace, invitation_id, "accept")

    again = act(api, auth, grace, invitation_id, "accept")

    assert_problem(again, 409, "invitation_not_pending")
    assert_problem(act(api, auth, ada, invitation_id, "withdraw"), 409, "invitation_not_pending")


def test_ignoring_is_silent_the_inviter_still_sees_it_pending(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation_id = invite(api, auth, ada, grace).json["id"]

    ignored = act(api, auth, grace, invitation_id, "ignore")

    assert ignored.status_code == 200 and ignored.json["status"] == "ignored"
    assert pending(api, auth, grace, "received") == []
    assert pending(api, auth, ada, "sent") == [(ada, grace, "pending")]
    seen_by_ada = api.get(f"/v1/invitations/{invitation_id}", headers=auth(ada)).json
    assert (seen_by_ada["status"], seen_by_ada["decided_at"]) == ("pending", None)
    assert api.get(f"/v1/relationships/{grace}", headers=auth(ada)).json["invitation"] == {
        "id": invitation_id, "direction": "sent"}
    assert api.get(f"/v1/relationships/{ada}", headers=auth(grace)).json["invitation"] is None
    # To the inviter it is pending, so a second invitation is refused as one.
    assert_problem(invite(api, auth, ada, grace), 409, "invitation_pending")


def test_an_ignored_invitation_cannot_be_accepted_but_inviting_back_connects(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation_id = invite(api, auth, ada, grace).json["id"]
    act(api, auth, grace, invitation_id, "ignore")

    assert_problem(act(api, auth, grace, invitation_id, "accept"), 409, "invitation_not_pending")
    back = invite(api, auth, grace, ada)

    assert back.status_code == 201 and back.json["status"] == "accepted"
    assert connected(api, auth, ada, grace)


def test_only_the_inviter_withdraws(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation_id = invite(api, auth, ada, grace).json["id"]

    assert_problem(act(api, auth, grace, invitation_id, "withdraw"), 403, "not_inviter")
    assert_problem(act(api, auth, ada, invitation_id, "ignore"), 403, "not_invitee")
    withdrawn = act(api, auth, ada, invitation_id, "withdraw")

    assert withdrawn.status_code == 200 and withdrawn.json["status"] == "withdrawn"
    assert pending(api, auth, grace, "received") == [] and pending(api, auth, ada, "sent") == []
    assert_problem(act(api, auth, grace, invitation_id, "accept"), 409, "invitation_not_pending")


def test_the_inviter_may_withdraw_an_invitation_that_was_silently_ignored(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation_id = invite(api, auth, ada, grace).json["id"]
    act(api, auth, grace, invitation_id, "ignore")

    assert act(api, auth, ada, invitation_id, "withdraw").json["status"] == "withdrawn"
    assert pending(api, auth, ada, "sent") == []


# --- limits -------------------------------------------------------------------------

def test_after_a_withdrawal_the_same_member_cannot_be_invited_for_21_days(api, auth, unique, settings):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    act(api, auth, ada, invite(api, auth, ada, grace).json["id"], "withdraw")

    again = invite(api, auth, ada, grace)

    assert_problem(again, 409, "reinvite_cooldown")
    assert near(again.json["lifts_at"], timedelta(days=settings.reinvite_cooldown_days))
    assert again.json["retry_after"] > 20 * 24 * 3600
    assert again.json["lifts_at"] in again.json["detail"]
    # The cool-down binds the inviter only, and only towards that member.
    assert invite(api, auth, ada, linus).status_code == 201
    assert invite(api, auth, grace, ada).json["status"] == "pending"


def test_at_most_so_many_invitations_in_any_rolling_7_days(settings, auth, unique):
    api = create_app({"TESTING": True}, settings=settings.replace(invitation_weekly_limit=3)).test_client()
    ada = unique("ada")
    sent = [invite(api, auth, ada, unique(f"m{i}")) for i in range(3)]
    act(api, auth, ada, sent[0].json["id"], "withdraw")  # withdrawn ones were still sent

    refused = invite(api, auth, ada, unique("one-too-many"))

    assert [r.status_code for r in sent] == [201, 201, 201]
    assert_problem(refused, 429, "invitation_limit_reached")
    assert refused.json["limit"] == 3
    assert near(refused.json["lifts_at"], timedelta(days=7))
    assert refused.json["retry_after"] > 6 * 24 * 3600
    assert refused.headers["Retry-After"] == str(refused.json["retry_after"])
    assert len(pending(api, auth, ada, "sent")) == 2


def test_a_refused_invitation_or_a_crossing_accept_leaves_the_weekly_allowance_as_it_was(settings, auth, unique):
    api = create_app({"TESTING": True}, settings=settings.replace(invitation_weekly_limit=2)).test_client()
    ada, grace, linus, alan, troll = unique("ada"), unique("grace"), unique("linus"), unique("alan"), unique("troll")
    assert invite(api, auth, ada, grace).status_code == 201
    assert_problem(invite(api, auth, ada, grace), 409, "invitation_pending")
    api.put(f"/v1/blocks/{ada}", headers=auth(troll))
    assert_problem(invite(api, auth, ada, troll), 403, "invitation_refused")
    invite(api, auth, linus, ada)
    assert invite(api, auth, ada, linus).json["status"] == "accepted"  # a yes, not an invitation sent

    assert invite(api, auth, ada, alan).status_code == 201  # the second of two: none of the above took a place
    assert_problem(invite(api, auth, ada, unique("erin")), 429, "invitation_limit_reached")


def test_a_member_has_at_most_so_many_connections(settings, auth, unique):
    api = create_app({"TESTING": True}, settings=settings.replace(max_connections=1)).test_client()
    ada, grace, linus, alan = unique("ada"), unique("grace"), unique("linus"), unique("alan")
    waiting = invite(api, auth, linus, ada).json["id"]
    act(api, auth, grace, invite(api, auth, ada, grace).json["id"], "accept")

    assert_problem(invite(api, auth, ada, alan), 409, "connection_limit_reached")
    refused = act(api, auth, ada, waiting, "accept")

    assert_problem(refused, 409, "connection_limit_reached")
    assert refused.json["member"] == ada and refused.json["limit"] == 1
    assert not connected(api, auth, ada, linus)
    assert pending(api, auth, ada, "received") == [(linus, ada, "pending")]


# --- lists --------------------------------------------------------------------------

def test_invitation_lists_are_newest_first_and_paged(api, auth, unique):
    grace = unique("grace")
    inviters = [unique(f"m{i}") for i in range(5)]
    for inviter in inviters:
        next_millisecond()
        invite(api, auth, inviter, grace)

    first = api.get("/v1/invitations?direction=received&limit=2", headers=auth(grace)).json
    rest = api.get(f"/v1/invitations?direction=received&limit=10&cursor={first['next_cursor']}",
                   headers=auth(grace)).json

    seen = [i["inviter"] for i in first["items"] + rest["items"]]
    assert seen == list(reversed(inviters))
    assert rest["next_cursor"] is None
