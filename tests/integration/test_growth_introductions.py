"""Introductions (PRODUCT.md, Network): ask a mutual connection to introduce you; the
introducer forwards (the target receives an invitation naming them) or declines; each step
is notified, and the requester hears the outcome."""
from __future__ import annotations

import pytest

from tests.support.http import assert_problem
from tests.support.infra import eventually, events_of, read_topic


@pytest.fixture
def api(apps):
    return apps("connections")


@pytest.fixture
def trio(unique, connect):
    """ada and linus both know grace, not each other."""
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace), connect(grace, linus)
    return ada, grace, linus


def inbox(apps, auth, member, *types):
    """``member``'s notifications about introductions (not those of making the trio's connections)."""
    items = apps("notifications").get("/v1/notifications", headers=auth(member)).json["items"]
    return [n for n in items if n["type"] in (types or INTRODUCTION_TYPES)]


INTRODUCTION_TYPES = ("introduction_requested", "introduction_forwarded", "introduction_declined")


def test_forwarding_sends_the_target_an_invitation_that_names_the_introducer(apps, api, auth, workers, settings,
                                                                             trio):
    workers("connections"), workers("notifications")
    ada, grace, linus = trio

    asked = api.post("/v1/introductions", json={"target": linus, "via": grace, "note": "Linus knows kernels"},
                     headers=auth(ada))
    assert asked.status_code == 201, asked.json
    intro = asked.json
    assert (intro["status"], intro["requester"], intro["target"], intro["via"]) == ("pending", ada, linus, grace)
    [requested] = eventually(lambda: inbox(apps, auth, grace), message="the introducer is asked")
    assert (requested["type"], requested["object"]) == ("introduction_requested", intro["id"])

    forwarded = api.post(f"/v1/introductions/{intro['id']}/forward", headers=auth(grace))

    assert forwarded.status_code == 200, forwarded.json
    assert forwarded.json["status"] == "forwarded"
    [invitation] = api.get("/v1/invitations?direction=received", headers=auth(linus)).json["items"]
    assert (invitation["inviter"], invitation["introduced_by"], invitation["message"]) == (
        ada, grace, "Linus knows kernels")
    assert invitation["id"] == forwarded.json["invitation_id"]
    events = read_topic(settings, "connections.events",
                        lambda evs: events_of(evs, "introduction.forwarded", introduction_id=intro["id"]))
    assert events_of(events, "invitation.sent", invitation_id=invitation["id"])[0].data["introduced_by"] == grace
    types = lambda m: {n["type"] for n in inbox(apps, auth, m, *INTRODUCTION_TYPES, "invitation_received")}  # noqa: E731
    eventually(lambda: {"introduction_forwarded", "invitation_received"} <= types(linus), message="target told")
    [told] = eventually(lambda: inbox(apps, auth, ada), message="the requester hears the outcome")
    assert told["summary"] == f"{grace} introduced you to {linus}"


def test_declining_tells_the_requester_and_never_the_target(apps, api, auth, workers, settings, trio):
    workers("connections"), workers("notifications")
    ada, grace, linus = trio
    intro = api.post("/v1/introductions", json={"target": linus, "via": grace}, headers=auth(ada)).json

    declined = api.post(f"/v1/introductions/{intro['id']}/decline", headers=auth(grace))

    assert declined.status_code == 200 and declined.json["status"] == "declined"
    [told] = eventually(lambda: inbox(apps, auth, ada), message="the requester hears of the decline")
    assert (told["type"], told["summary"]) == ("introduction_declined", f"{grace} declined to introduce you to {linus}")
    read_topic(settings, "connections.events",
               lambda evs: events_of(evs, "introduction.declined", introduction_id=intro["id"]))
    assert api.get("/v1/invitations?direction=received", headers=auth(linus)).json["items"] == []
    assert_problem(api.get(f"/v1/introductions/{intro['id']}", headers=auth(linus)), 404, "introduction_not_found")
    assert_problem(api.post(f"/v1/introductions/{intro['id']}/forward", headers=auth(grace)),
                   409, "introduction_not_pending")


def test_only_the_introducer_decides(api, auth, unique, trio):
    ada, grace, linus = trio
    intro = api.post("/v1/introductions", json={"target": linus, "via": grace}, headers=auth(ada)).json

    assert_problem(api.post(f"/v1/introductions/{intro['id']}/forward", headers=auth(ada)), 403, "not_introducer")
    assert_problem(api.post(f"/v1/introductions/{intro['id']}/decline", headers=auth(linus)),
                   404, "introduction_not_found")
    assert_problem(api.post(f"/v1/introductions/{intro['id']}/forward", headers=auth(unique("eve"))),
                   404, "introduction_not_found")
    assert api.get(f"/v1/introductions/{intro['id']}", headers=auth(grace)).json["status"] == "pending"


def test_the_introducer_must_be_connected_to_both(api, auth, unique, connect, trio):
    ada, grace, linus = trio
    stranger = unique("stranger")
    connect(ada, stranger)

    assert_problem(api.post("/v1/introductions", json={"target": linus, "via": stranger}, headers=auth(ada)),
                   422, "not_a_mutual_connection")
    assert_problem(api.post("/v1/introductions", json={"target": linus, "via": linus}, headers=auth(ada)),
                   422, "not_a_mutual_connection")
    assert_problem(api.post("/v1/introductions", json={"target": ada, "via": grace}, headers=auth(ada)),
                   422, "cannot_introduce_self")
    assert_problem(api.post("/v1/introductions", json={"target": linus, "via": grace, "x": 1}, headers=auth(ada)),
                   422, "validation_failed")


def test_no_introduction_to_a_connection_or_twice(api, auth, connect, trio):
    ada, grace, linus = trio
    assert api.post("/v1/introductions", json={"target": linus, "via": grace}, headers=auth(ada)).status_code == 201

    assert_problem(api.post("/v1/introductions", json={"target": linus, "via": grace}, headers=auth(ada)),
                   409, "introduction_pending")
    assert_problem(api.post("/v1/introductions", json={"target": ada, "via": grace}, headers=auth(grace)),
                   422, "not_a_mutual_connection")
    connect(ada, linus)
    assert_problem(api.post("/v1/introductions", json={"target": grace, "via": linus}, headers=auth(ada)),
                   409, "already_connected")


def test_a_block_refuses_introductions_with_a_plain_refusal(api, auth, trio):
    ada, grace, linus = trio
    intro = api.post("/v1/introductions", json={"target": linus, "via": grace}, headers=auth(ada)).json
    api.put(f"/v1/blocks/{ada}", headers=auth(linus))

    asked = api.post("/v1/introductions", json={"target": ada, "via": grace}, headers=auth(linus))
    assert_problem(asked, 403, "introduction_refused")
    assert "block" not in asked.json["detail"].lower()
    # The pending one cannot go through either; the introducer learns only that it was refused.
    assert_problem(api.post(f"/v1/introductions/{intro['id']}/forward", headers=auth(grace)),
                   403, "invitation_refused")
    assert api.get("/v1/invitations?direction=received", headers=auth(linus)).json["items"] == []
