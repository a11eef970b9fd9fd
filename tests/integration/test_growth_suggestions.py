"""People you may know (PRODUCT.md, Network): 2nd-degree members ranked by mutual
connections, ties by member id; never oneself, a connection, a pending invitation either
way, or a blocked member either way."""
from __future__ import annotations

import pytest


@pytest.fixture
def api(apps):
    return apps("connections")


@pytest.fixture
def connect(api, auth):
    def connect(a, b):
        invitation = api.post("/v1/invitations", json={"invitee": b}, headers=auth(a)).json
        assert api.post(f"/v1/invitations/{invitation['id']}/accept", headers=auth(b)).status_code == 200
    return connect


def suggested(api, auth, member, query=""):
    response = api.get(f"/v1/suggestions{query}", headers=auth(member))
    assert response.status_code == 200, response.json
    return response.json


def pairs(page):
    return [(s["member"], s["mutual_connections"]) for s in page["items"]]


@pytest.fixture
def network(unique, connect):
    """ada knows f1, f2, f3. carol knows all three, bob and dave two each, erin one."""
    ada = unique("ada")
    f1, f2, f3 = unique("f1"), unique("f2"), unique("f3")
    bob, carol, dave, erin = unique("bob"), unique("carol"), unique("dave"), unique("erin")
    for friend in (f1, f2, f3):
        connect(ada, friend)
    for friend in (f1, f2, f3):
        connect(carol, friend)
    connect(bob, f1), connect(bob, f2), connect(dave, f2), connect(dave, f3), connect(erin, f3)
    return ada, bob, carol, dave, erin


def test_second_degree_members_ranked_by_mutual_connections_ties_by_id(api, auth, network):
    ada, bob, carol, dave, erin = network

    assert pairs(suggested(api, auth, ada)) == [(carol, 3), (bob, 2), (dave, 2), (erin, 1)]


def test_suggestions_are_paged_with_a_stable_cursor(api, auth, network):
    ada, bob, carol, dave, erin = network

    first = suggested(api, auth, ada, "?limit=2")
    rest = suggested(api, auth, ada, f"?limit=2&cursor={first['next_cursor']}")

    assert pairs(first) + pairs(rest) == [(carol, 3), (bob, 2), (dave, 2), (erin, 1)]
    assert rest["next_cursor"] is None
    assert api.get("/v1/suggestions?cursor=%25%25", headers=auth(ada)).json["code"] == "invalid_cursor"


def test_never_a_connection_a_pending_invitation_or_a_blocked_member(api, auth, network, connect):
    ada, bob, carol, dave, erin = network
    assert suggested(api, auth, ada)["items"]  # computed and cached before the changes below

    connect(ada, carol)
    api.post("/v1/invitations", json={"invitee": ada}, headers=auth(bob))
    api.put(f"/v1/blocks/{ada}", headers=auth(erin))

    assert [m for m, _ in pairs(suggested(api, auth, ada))] == [dave]
    assert ada not in [m for m, _ in pairs(suggested(api, auth, erin))]
    api.put(f"/v1/blocks/{dave}", headers=auth(ada))
    assert pairs(suggested(api, auth, ada)) == []


def test_a_new_connection_brings_its_network_at_once(api, auth, unique, connect):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    assert pairs(suggested(api, auth, ada)) == []

    connect(ada, grace), connect(grace, linus)

    assert pairs(suggested(api, auth, ada)) == [(linus, 1)]
    assert pairs(suggested(api, auth, linus)) == [(ada, 1)]
