"""Connections, their visibility, removal, degrees and mutual connections (PRODUCT.md,
Two relationships, Network, Who sees what), through the HTTP API with the real Redis."""
from __future__ import annotations

import pytest

from tests.support.http import assert_problem
from tests.support.infra import next_millisecond


@pytest.fixture
def api(apps):
    return apps("connections")


def relationship(api, auth, a, b):
    response = api.get(f"/v1/relationships/{b}", headers=auth(a))
    assert response.status_code == 200, response.json
    return response.json


def members(page):
    return [c["member"] for c in page["items"]]


# --- connections --------------------------------------------------------------------

def test_connections_are_listed_newest_first_and_paged(api, auth, unique, connect):
    ada = unique("ada")
    others = [unique(f"m{i}") for i in range(5)]
    for other in others:
        next_millisecond()
        connect(ada, other)

    first = api.get(f"/v1/members/{ada}/connections?limit=3", headers=auth(others[0])).json
    rest = api.get(f"/v1/members/{ada}/connections?cursor={first['next_cursor']}", headers=auth(others[0])).json

    assert members(first) + members(rest) == list(reversed(others))
    assert rest["next_cursor"] is None
    assert all(c["connected_at"].endswith("Z") for c in first["items"])


def test_the_connection_count_is_public(api, auth, unique, connect):
    ada, grace, linus, stranger = unique("ada"), unique("grace"), unique("linus"), unique("stranger")
    connect(ada, grace), connect(linus, ada)
    api.patch("/v1/settings", json={"connections_visibility": "only_me"}, headers=auth(ada))

    response = api.get(f"/v1/members/{ada}/connections/count", headers=auth(stranger))

    assert response.status_code == 200 and response.json == {"count": 2}


def test_the_list_of_connections_obeys_the_owners_setting(api, auth, unique, connect):
    ada, grace, stranger = unique("ada"), unique("grace"), unique("stranger")
    connect(ada, grace)

    def lists(viewer):
        return api.get(f"/v1/members/{ada}/connections", headers=auth(viewer))

    assert api.get("/v1/settings", headers=auth(ada)).json == {"connections_visibility": "everyone"}
    assert lists(stranger).status_code == 200

    assert api.patch("/v1/settings", json={"connections_visibility": "connections"},
                     headers=auth(ada)).json == {"connections_visibility": "connections"}
    assert members(lists(grace).json) == [grace]
    assert_problem(lists(stranger), 403, "connections_hidden")

    api.patch("/v1/settings", json={"connections_visibility": "only_me"}, headers=auth(ada))
    assert_problem(lists(grace), 403, "connections_hidden")
    assert members(lists(ada).json) == [grace]


def test_an_unknown_visibility_is_refused_and_the_setting_unchanged(api, auth, unique):
    ada = unique("ada")

    for body in ({"connections_visibility": "friends"}, {"followers": "everyone"}):
        assert_problem(api.patch("/v1/settings", json=body, headers=auth(ada)), 422, "validation_failed")

    assert api.get("/v1/settings", headers=auth(ada)).json == {"connections_visibility": "everyone"}


def test_either_side_removes_a_connection(api, auth, unique, connect):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace), connect(linus, ada)

    assert api.delete(f"/v1/connections/{ada}", headers=auth(grace)).status_code == 204
    assert api.delete(f"/v1/connections/{linus}", headers=auth(ada)).status_code == 204

    assert api.get(f"/v1/members/{ada}/connections/count", headers=auth(ada)).json == {"count": 0}
    for a, b in ((ada, grace), (grace, ada), (ada, linus), (linus, ada)):
        assert relationship(api, auth, a, b)["connected"] is False


def test_removing_someone_you_are_not_connected_to_is_404(api, auth, unique):
    assert_problem(api.delete(f"/v1/connections/{unique('grace')}", headers=auth(unique("ada"))),
                   404, "not_connected")


def test_after_a_removal_either_may_invite_again(api, auth, unique, connect):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    api.delete(f"/v1/connections/{grace}", headers=auth(ada))

    assert api.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).status_code == 201


# --- relationships ------------------------------------------------------------------

def test_degrees_one_two_three_and_out_of_network(api, auth, unique, connect):
    ada, b, c, d, e = (unique(n) for n in ("ada", "b", "c", "d", "e"))
    connect(ada, b), connect(b, c), connect(c, d), connect(d, e)

    assert [relationship(api, auth, ada, m)["degree"] for m in (b, c, d, e)] == [1, 2, 3, None]
    assert [relationship(api, auth, m, ada)["degree"] for m in (b, c, d, e)] == [1, 2, 3, None]


def test_a_connection_may_message_and_see_the_full_profile_a_stranger_may_not(api, auth, unique, connect):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace), connect(grace, linus)

    assert relationship(api, auth, ada, grace) == {
        "member": grace, "degree": 1, "connected": True, "invitation": None, "mutual_connections": 0,
        "can_message": True, "profile_access": "full"}
    assert relationship(api, auth, ada, linus) == {
        "member": linus, "degree": 2, "connected": False, "invitation": None, "mutual_connections": 1,
        "can_message": False, "profile_access": "limited"}


def test_the_relationship_shows_the_pending_invitation_and_its_direction(api, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    invitation_id = api.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).json["id"]

    assert relationship(api, auth, ada, grace)["invitation"] == {"id": invitation_id, "direction": "sent"}
    assert relationship(api, auth, grace, ada)["invitation"] == {"id": invitation_id, "direction": "received"}


def test_mutual_connections_count_and_page(api, auth, unique, connect):
    ada, grace = unique("ada"), unique("grace")
    shared = [unique(f"s{i}") for i in range(5)]
    for m in shared:
        next_millisecond()
        connect(ada, m), connect(m, grace)
    connect(ada, unique("only-ada")), connect(grace, unique("only-grace"))

    first = api.get(f"/v1/members/{grace}/mutual-connections?limit=2", headers=auth(ada)).json
    second = api.get(f"/v1/members/{grace}/mutual-connections?limit=2&cursor={first['next_cursor']}",
                     headers=auth(ada)).json
    third = api.get(f"/v1/members/{grace}/mutual-connections?limit=2&cursor={second['next_cursor']}",
                    headers=auth(ada)).json

    assert first["total"] == 5 and relationship(api, auth, ada, grace)["mutual_connections"] == 5
    assert members(first) + members(second) + members(third) == list(reversed(shared))
    assert third["next_cursor"] is None


def test_asking_about_oneself_is_refused(api, auth, unique):
    ada = unique("ada")
    assert_problem(api.get(f"/v1/relationships/{ada}", headers=auth(ada)), 422, "same_member")
    assert_problem(api.get(f"/v1/members/{ada}/mutual-connections", headers=auth(ada)), 422, "same_member")


# --- projections -----------------------------------------------------------------------

def test_a_change_whose_request_stopped_before_projecting_reaches_both_members_lists_through_the_worker(
        api, auth, unique, workers, monkeypatch):
    from types import SimpleNamespace

    from services.connections import invitations
    from tests.support.infra import eventually

    workers("connections")
    ada, grace = unique("ada"), unique("grace")
    with monkeypatch.context() as patched:
        # As if each request died right after its pair's script: only the worker projects.
        patched.setattr(invitations, "projections", SimpleNamespace(project=lambda store, a, b, **given: None))
        invitation = api.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).json
        assert relationship(api, auth, grace, ada)["invitation"] == {"id": invitation["id"], "direction": "received"}
        eventually(lambda: [i["id"] for i in api.get("/v1/invitations", headers=auth(grace)).json["items"]]
                   == [invitation["id"]], message="the invitee's received list")
        assert api.post(f"/v1/invitations/{invitation['id']}/accept", headers=auth(grace)).status_code == 200
        assert relationship(api, auth, ada, grace)["connected"]  # the pair's record: at once
        eventually(lambda: members(api.get(f"/v1/members/{ada}/connections", headers=auth(ada)).json) == [grace]
                   and members(api.get(f"/v1/members/{grace}/connections", headers=auth(grace)).json) == [ada],
                   message="both members' connections")
    assert api.get("/v1/invitations", headers=auth(grace)).json["items"] == []
    assert api.get("/v1/invitations?direction=sent", headers=auth(ada)).json["items"] == []
