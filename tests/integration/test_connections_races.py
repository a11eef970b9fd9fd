"""Atomic transitions under real concurrency: threads racing through the HTTP API on the
real Redis (ARCHITECTURE.md: state changes that hold together happen in one script)."""
from __future__ import annotations

import threading

import pytest

from services.connections.app import create_app
from shared.events.catalogue import pair
from tests.support.infra import read_topic

ROUNDS = 15


@pytest.fixture(scope="module")
def app(settings):
    return create_app({"TESTING": True}, settings=settings)


def race(app, *calls):
    """Run ``calls`` (each ``fn(client)``) at the same moment, one thread and client each; their results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        client = app.test_client()
        barrier.wait()
        results[i] = call(client)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def state(client, auth, a, b):
    """What each side sees of the pair: connected, counts, pending invitations between them."""
    rel_ab = client.get(f"/v1/relationships/{b}", headers=auth(a)).json
    rel_ba = client.get(f"/v1/relationships/{a}", headers=auth(b)).json
    pending = [(i["inviter"], i["invitee"]) for m in (a, b) for d in ("sent", "received")
               for i in client.get(f"/v1/invitations?direction={d}", headers=auth(m)).json["items"]]
    counts = [client.get(f"/v1/members/{m}/connections/count", headers=auth(m)).json["count"] for m in (a, b)]
    return rel_ab["connected"], rel_ba["connected"], counts, pending


def test_an_accept_racing_a_withdrawal_has_exactly_one_winner(app, auth, unique):
    client = app.test_client()
    for i in range(ROUNDS):
        ada, grace = unique(f"ada{i}"), unique(f"grace{i}")
        invitation_id = client.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).json["id"]

        accept, withdraw = race(app,
                                lambda c: c.post(f"/v1/invitations/{invitation_id}/accept", headers=auth(grace)),
                                lambda c: c.post(f"/v1/invitations/{invitation_id}/withdraw", headers=auth(ada)))

        assert sorted([accept.status_code, withdraw.status_code]) == [200, 409]
        loser = accept if accept.status_code == 409 else withdraw
        assert loser.json["code"] == "invitation_not_pending"
        final = client.get(f"/v1/invitations/{invitation_id}", headers=auth(ada)).json["status"]
        if accept.status_code == 200:
            assert final == "accepted"
            assert state(client, auth, ada, grace) == (True, True, [1, 1], [])
        else:
            assert final == "withdrawn"
            assert state(client, auth, ada, grace) == (False, False, [0, 0], [])


def test_two_members_inviting_each_other_at_once_are_connected_once(app, auth, unique, workers, settings):
    workers("connections")
    client = app.test_client()
    pairs = []
    for i in range(ROUNDS):
        ada, grace = unique(f"ada{i}"), unique(f"grace{i}")
        pairs.append((ada, grace))

        one, other = race(app,
                          lambda c: c.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)),
                          lambda c: c.post("/v1/invitations", json={"invitee": ada}, headers=auth(grace)))

        assert (one.status_code, other.status_code) == (201, 201), (one.json, other.json)
        assert sorted([one.json["status"], other.json["status"]]) == ["accepted", "pending"]
        assert one.json["id"] == other.json["id"]
        assert state(client, auth, ada, grace) == (True, True, [1, 1], [])

    keys = {pair(a, b) for a, b in pairs}
    events = read_topic(settings, "connections.events",
                        lambda evs: len({e.key for e in evs if e.name == "invitation.accepted"} & keys) == len(keys))
    for a, b in pairs:
        mine = [e for e in events if e.key == pair(a, b)]
        assert [e.name for e in mine] == ["invitation.sent", "invitation.accepted"]


def test_a_removal_racing_an_accept_leaves_both_sides_agreeing(app, auth, unique):
    client = app.test_client()
    for i in range(ROUNDS):
        ada, grace = unique(f"ada{i}"), unique(f"grace{i}")
        invitation_id = client.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).json["id"]

        accept, remove = race(app,
                              lambda c: c.post(f"/v1/invitations/{invitation_id}/accept", headers=auth(grace)),
                              lambda c: c.delete(f"/v1/connections/{grace}", headers=auth(ada)))

        assert accept.status_code == 200
        assert remove.status_code in (204, 404)
        expected = (False, False, [0, 0], []) if remove.status_code == 204 else (True, True, [1, 1], [])
        assert state(client, auth, ada, grace) == expected


def test_concurrent_invitations_never_exceed_the_weekly_limit(settings, auth, unique):
    app = create_app({"TESTING": True}, settings=settings.replace(invitation_weekly_limit=5))
    ada = unique("ada")
    invitees = [unique(f"m{i}") for i in range(12)]

    results = race(app, *[(lambda c, m=m: c.post("/v1/invitations", json={"invitee": m}, headers=auth(ada)))
                          for m in invitees])

    assert sorted(r.status_code for r in results) == [201] * 5 + [429] * 7
    sent = app.test_client().get("/v1/invitations?direction=sent&limit=100", headers=auth(ada)).json["items"]
    assert len(sent) == 5
