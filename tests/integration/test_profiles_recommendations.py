"""Recommendations through HTTP: only 1st-degree connections write them, only the recipient
accepts or hides them, only accepted ones show in the full view."""
from __future__ import annotations

from tests.support.http import assert_problem
from tests.support.infra import events_of, eventually, read_topic

BODY = {"relationship": "worked with Ada on the Engine", "text": "Ada sees what a machine could become."}


def recommend(api, auth, author, recipient, body=None):
    return api.post(f"/v1/members/{recipient}/recommendations", json=body or BODY, headers=auth(author))


def received(api, auth, member):
    return api.get("/v1/recommendations", query_string={"direction": "received"}, headers=auth(member)).get_json()


def test_a_connection_writes_one_pending_and_the_recipient_lists_it(profiles_api, auth, unique, register, connected,
                                                                    settings):
    ada, grace = unique("ada"), unique("grace")
    register(ada), register(grace)
    connected(ada, grace)
    written = recommend(profiles_api, auth, grace, ada)
    assert written.status_code == 201, written.get_json()
    body = written.get_json()
    assert (body["author"], body["recipient"], body["status"], body["decided_at"]) == (grace, ada, "pending", None)
    assert [r["id"] for r in received(profiles_api, auth, ada)["items"]] == [body["id"]]
    eventually(lambda: [r["id"] for r in profiles_api.get("/v1/recommendations?direction=given",
                                                          headers=auth(grace)).get_json()["items"]] == [body["id"]],
               message="the author's list of recommendations given")
    events = read_topic(settings, "profiles.events",
                        lambda evs: events_of(evs, "recommendation.written", recommendation_id=body["id"]))
    data = events_of(events, "recommendation.written", recommendation_id=body["id"])[0].data
    assert (data["author"], data["recipient"], data["excerpt"]) == (grace, ada, BODY["text"])


def test_a_follower_or_a_stranger_gets_403_not_connected(profiles_api, apps, auth, unique, register, workers):
    workers("follows")
    ada, fan, stranger = unique("ada"), unique("fan"), unique("stranger")
    register(ada), register(fan), register(stranger)
    assert apps("follows").put(f"/v1/following/{ada}", headers=auth(fan)).status_code == 201
    assert_problem(recommend(profiles_api, auth, fan, ada), 403, "not_connected")
    assert_problem(recommend(profiles_api, auth, stranger, ada), 403, "not_connected")


def test_an_unknown_or_closed_recipient_is_404_and_oneself_a_422(profiles_api, auth, unique, register):
    ada, gone = unique("ada"), unique("gone")
    register(ada), register(gone)
    assert profiles_api.delete("/v1/profile", headers=auth(gone)).status_code == 204
    assert_problem(recommend(profiles_api, auth, ada, unique("nobody")), 404, "member_not_found")
    assert_problem(recommend(profiles_api, auth, ada, gone), 404, "member_not_found")
    assert_problem(recommend(profiles_api, auth, ada, ada), 422, "cannot_recommend_self")


def test_only_accepted_ones_show_in_the_full_view(profiles_api, auth, unique, register, connected):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    register(ada), register(grace), register(linus)
    connected(ada, grace), connected(ada, linus)
    first = recommend(profiles_api, auth, grace, ada).get_json()["id"]
    second = recommend(profiles_api, auth, linus, ada, {"relationship": "student", "text": "Patient."}).get_json()["id"]
    full = lambda: profiles_api.get(f"/v1/members/{ada}/profile", headers=auth(grace)).get_json()  # noqa: E731
    assert full()["recommendations"] == []
    accepted = profiles_api.post(f"/v1/recommendations/{first}/accept", headers=auth(ada))
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "accepted"
    assert [r["id"] for r in full()["recommendations"]] == [first]
    assert profiles_api.post(f"/v1/recommendations/{second}/hide", headers=auth(ada)).get_json()["status"] == "hidden"
    assert [r["id"] for r in full()["recommendations"]] == [first]
    assert profiles_api.post(f"/v1/recommendations/{first}/hide", headers=auth(ada)).status_code == 200
    assert full()["recommendations"] == []
    stranger_view = profiles_api.get(f"/v1/members/{ada}/profile", headers=auth(unique("stranger"))).get_json()
    assert "recommendations" not in stranger_view
    assert {r["status"] for r in received(profiles_api, auth, ada)["items"]} == {"hidden"}


def test_only_the_recipient_decides_the_author_gets_403_and_anyone_else_404(profiles_api, auth, unique, register,
                                                                           connected):
    ada, grace = unique("ada"), unique("grace")
    register(ada), register(grace)
    connected(ada, grace)
    rid = recommend(profiles_api, auth, grace, ada).get_json()["id"]
    assert_problem(profiles_api.post(f"/v1/recommendations/{rid}/accept", headers=auth(grace)), 403, "not_recipient")
    assert_problem(profiles_api.post(f"/v1/recommendations/{rid}/hide", headers=auth(unique("eve"))), 404,
                   "recommendation_not_found")
    assert_problem(profiles_api.post("/v1/recommendations/not-an-id/accept", headers=auth(ada)), 404,
                   "recommendation_not_found")
    assert received(profiles_api, auth, ada)["items"][0]["status"] == "pending"


def test_a_text_over_3000_or_an_empty_relationship_is_a_422(profiles_api, auth, unique, register):
    ada, grace = unique("ada"), unique("grace")
    register(ada), register(grace)
    for body, field in (({"relationship": "x", "text": "t" * 3001}, "text"), ({"relationship": "", "text": "t"},
                                                                                "relationship"),
                        ({"text": "t"}, "relationship"), ({"relationship": "x"}, "text")):
        problem = assert_problem(recommend(profiles_api, auth, grace, ada, body), 422)
        assert field in problem["errors"]


def test_a_repeat_with_the_same_idempotency_key_returns_the_first_recommendation(profiles_api, auth, unique, register,
                                                                                 connected):
    ada, grace = unique("ada"), unique("grace")
    register(ada), register(grace)
    connected(ada, grace)
    headers = {**auth(grace), "Idempotency-Key": unique("key")}
    first = profiles_api.post(f"/v1/members/{ada}/recommendations", json=BODY, headers=headers)
    again = profiles_api.post(f"/v1/members/{ada}/recommendations", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(received(profiles_api, auth, ada)["items"]) == 1
