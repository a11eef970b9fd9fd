"""Every change of the connections service reaches connections.events through the outbox,
keyed by the member pair; bad input is a 4xx problem+json and changes nothing."""
from __future__ import annotations

import pytest

from shared.auth import mint_token
from shared.events.catalogue import pair
from tests.support.http import assert_problem
from tests.support.infra import events_of, read_topic


@pytest.fixture
def api(apps):
    return apps("connections")


def test_each_transition_emits_its_event_keyed_by_the_member_pair(api, auth, unique, workers, settings):
    workers("connections")
    ada, grace, linus, alan = unique("ada"), unique("grace"), unique("linus"), unique("alan")
    post = lambda a, path, **kw: api.post(path, headers=auth(a), **kw)  # noqa: E731
    accepted = post(ada, "/v1/invitations", json={"invitee": grace, "message": "Hello"}).json["id"]
    post(grace, f"/v1/invitations/{accepted}/accept")
    ignored = post(linus, "/v1/invitations", json={"invitee": ada}).json["id"]
    post(ada, f"/v1/invitations/{ignored}/ignore")
    withdrawn = post(ada, "/v1/invitations", json={"invitee": alan}).json["id"]
    post(ada, f"/v1/invitations/{withdrawn}/withdraw")
    assert api.delete(f"/v1/connections/{ada}", headers=auth(grace)).status_code == 204

    events = read_topic(settings, "connections.events",
                        lambda evs: events_of(evs, "connection.removed", remover=grace, other=ada))

    sent = events_of(events, "invitation.sent", invitation_id=accepted)
    assert [(e.data["inviter"], e.data["invitee"], e.data["message"]) for e in sent] == [(ada, grace, "Hello")]
    assert [e.key for e in sent] == [pair(ada, grace)]
    for name, invitation_id, (inviter, invitee) in (("invitation.accepted", accepted, (ada, grace)),
                                                     ("invitation.ignored", ignored, (linus, ada)),
                                                     ("invitation.withdrawn", withdrawn, (ada, alan))):
        found = events_of(events, name, invitation_id=invitation_id)
        assert [(e.data["inviter"], e.data["invitee"], e.key) for e in found] == [
            (inviter, invitee, pair(inviter, invitee))], name
    removed = events_of(events, "connection.removed", remover=grace, other=ada)
    assert [(e.data["reason"], e.key) for e in removed] == [("removed", pair(ada, grace))]


def test_refused_transitions_emit_nothing(api, auth, unique, workers, settings):
    workers("connections")
    ada, grace = unique("ada"), unique("grace")
    invitation_id = api.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).json["id"]
    assert api.post(f"/v1/invitations/{invitation_id}/accept", headers=auth(ada)).status_code == 403
    assert api.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).status_code == 409
    assert api.delete(f"/v1/connections/{grace}", headers=auth(ada)).status_code == 404
    # A transition of the same pair comes after the refusals on the same partition: once it
    # is read, anything the refusals had emitted would have been read before it.
    assert api.post(f"/v1/invitations/{invitation_id}/withdraw", headers=auth(ada)).status_code == 200

    events = read_topic(settings, "connections.events",
                        lambda evs: events_of(evs, "invitation.withdrawn", inviter=ada, invitee=grace))

    mine = [e for e in events if ada in (e.data.get("inviter"), e.data.get("invitee"), e.data.get("remover"))]
    assert [(e.name, e.data.get("invitee")) for e in mine] == [("invitation.sent", grace),
                                                              ("invitation.withdrawn", grace)]


# --- bad input ------------------------------------------------------------------------

def sent_by(api, auth, member):
    return api.get("/v1/invitations?direction=sent", headers=auth(member)).json["items"]


@pytest.mark.parametrize("body, field", [
    ({"invitee": "not a member!"}, "invitee"),
    ({"invitee": "x" * 65}, "invitee"),
    ({}, "invitee"),
    ({"invitee": 42}, "invitee"),
    ({"invitee": "grace", "message": "x" * 301}, "message"),
    ({"invitee": "grace", "message": 7}, "message"),
    ({"invitee": "grace", "note": "hi"}, "note"),
])
def test_a_bad_invitation_body_is_422_and_nothing_is_sent(api, auth, unique, body, field):
    ada = unique("ada")

    response = api.post("/v1/invitations", json=body, headers=auth(ada))

    assert_problem(response, 422, "validation_failed")
    assert field in response.json["errors"]
    assert sent_by(api, auth, ada) == []


def test_a_body_that_is_not_json_is_400_malformed_body(api, auth, unique):
    ada = unique("ada")
    response = api.post("/v1/invitations", data="{nope", headers={**auth(ada), "Content-Type": "application/json"})
    assert_problem(response, 400, "malformed_body")
    assert sent_by(api, auth, ada) == []


@pytest.mark.parametrize("method, path", [
    ("get", "/v1/relationships/bad%20id"),
    ("get", "/v1/members/bad%20id/connections"),
    ("get", "/v1/members/bad%20id/connections/count"),
    ("get", "/v1/members/bad%20id/mutual-connections"),
    ("delete", "/v1/connections/bad%20id"),
])
def test_a_malformed_member_id_in_the_path_is_422(api, auth, unique, method, path):
    assert_problem(getattr(api, method)(path, headers=auth(unique("ada"))), 422, "invalid_member_id")


@pytest.mark.parametrize("query, code, field", [
    ("limit=0", "validation_failed", "limit"), ("limit=101", "validation_failed", "limit"),
    ("limit=many", "validation_failed", "limit"), ("cursor=garbage!", "invalid_cursor", "cursor"),
    ("direction=both", "validation_failed", "direction"),
])
def test_bad_paging_arguments_are_422_naming_the_argument(api, auth, unique, query, code, field):
    response = api.get(f"/v1/invitations?{query}", headers=auth(unique("ada")))
    body = assert_problem(response, 422, code)
    assert list(body["errors"]) == [field]


def test_missing_bad_or_expired_tokens_are_401_and_change_nothing(api, auth, unique, settings):
    ada, grace = unique("ada"), unique("grace")
    expired = {"Authorization": f"Bearer {mint_token(ada, settings.jwt_secret, ttl_seconds=-60)}"}
    forged = {"Authorization": f"Bearer {mint_token(ada, 'another-secret-' + 'x' * 32)}"}

    for headers in ({}, expired, forged, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic x"}):
        response = api.post("/v1/invitations", json={"invitee": grace}, headers=headers)
        assert response.status_code == 401 and response.mimetype == "application/problem+json"
        assert response.json["code"]

    assert sent_by(api, auth, ada) == []
    assert api.get("/v1/invitations", headers=auth(grace)).json["items"] == []


def test_an_unknown_path_is_404_not_found_and_a_wrong_method_405(api, auth, unique):
    headers = auth(unique("ada"))
    assert_problem(api.get("/v1/no-such-thing", headers=headers), 404, "not_found")
    assert_problem(api.get("/no-such-thing"), 404, "not_found")
    response = api.put("/v1/invitations", headers=headers)
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"]
