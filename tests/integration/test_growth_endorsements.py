"""Endorsements (PRODUCT.md, Two relationships): only a 1st-degree connection endorses a
skill, once per skill; the endorsed member is notified; anyone sees the counts."""
from __future__ import annotations

import pytest

from tests.support.http import assert_problem
from tests.support.infra import eventually


@pytest.fixture
def api(apps):
    return apps("connections")


def endorse(api, auth, endorser, endorsee, skill):
    return api.post(f"/v1/members/{endorsee}/endorsements", json={"skill": skill}, headers=auth(endorser))


def test_connections_endorse_and_everyone_sees_counts_and_endorsers(apps, api, auth, workers, unique, connect):
    workers("connections"), workers("notifications")
    ada, grace, linus, stranger = unique("ada"), unique("grace"), unique("linus"), unique("stranger")
    connect(ada, grace), connect(linus, ada)

    first = endorse(api, auth, grace, ada, "Compilers")
    assert first.status_code == 201, first.json
    assert (first.json["endorser"], first.json["endorsee"], first.json["skill"]) == (grace, ada, "Compilers")
    assert endorse(api, auth, linus, ada, " compilers ").status_code == 201
    assert endorse(api, auth, linus, ada, "Mathematics").status_code == 201

    listed = api.get(f"/v1/members/{ada}/endorsements", headers=auth(stranger)).json
    assert [(s["skill"], s["count"], s["endorsers"], s["endorsed_by_me"]) for s in listed["items"]] == [
        ("Compilers", 2, [linus, grace], False), ("Mathematics", 1, [linus], False)]
    mine = api.get(f"/v1/members/{ada}/endorsements", headers=auth(grace)).json["items"]
    assert [s["endorsed_by_me"] for s in mine] == [True, False]
    received = lambda: [n["summary"] for n in apps("notifications").get(  # noqa: E731
        "/v1/notifications", headers=auth(ada)).json["items"] if n["type"] == "endorsement_received"]
    eventually(lambda: len(received()) == 3, message="each endorsement notified to the endorsee")
    assert f"{grace} endorsed you for Compilers" in received()


def test_endorsing_the_same_skill_twice_is_idempotent(api, auth, unique, connect):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)

    first = endorse(api, auth, grace, ada, "Python")
    again = endorse(api, auth, grace, ada, "PYTHON")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    [skill] = api.get(f"/v1/members/{ada}/endorsements", headers=auth(ada)).json["items"]
    assert (skill["skill"], skill["count"]) == ("Python", 1)


def test_followers_strangers_and_blocked_members_cannot_endorse(apps, api, auth, unique, connect):
    ada, grace, follower, stranger = unique("ada"), unique("grace"), unique("follower"), unique("stranger")
    connect(ada, grace)
    apps("follows").put(f"/v1/following/{ada}", headers=auth(follower))
    api.put(f"/v1/blocks/{grace}", headers=auth(ada))

    for endorser in (follower, stranger, grace):
        assert_problem(endorse(api, auth, endorser, ada, "Python"), 403, "not_connected")
    assert api.get(f"/v1/members/{ada}/endorsements", headers=auth(ada)).json["items"] == []


def test_endorsement_input_is_checked(api, auth, unique, connect):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    assert_problem(endorse(api, auth, ada, ada, "Python"), 422, "cannot_endorse_self")
    assert_problem(endorse(api, auth, grace, ada, "   "), 422, "invalid_skill")
    assert_problem(endorse(api, auth, grace, ada, "x" * 81), 422, "validation_failed")
    assert_problem(api.post(f"/v1/members/{ada}/endorsements", json={"skill": "Go", "extra": 1},
                            headers=auth(grace)), 422, "validation_failed")


@pytest.mark.parametrize("setting", ["only_me", "connections"])
def test_endorsers_are_named_only_to_whom_the_connections_visibility_allows(api, auth, unique, connect, setting):
    ada, grace, linus, stranger = unique("ada"), unique("grace"), unique("linus"), unique("stranger")
    connect(ada, grace), connect(ada, linus)
    assert endorse(api, auth, grace, ada, "Compilers").status_code == 201
    assert api.patch("/v1/settings", json={"connections_visibility": setting}, headers=auth(ada)).status_code == 200

    seen_by = lambda viewer: [(s["skill"], s["count"], s["endorsers"]) for s in api.get(  # noqa: E731
        f"/v1/members/{ada}/endorsements", headers=auth(viewer)).json["items"]]

    assert seen_by(stranger) == [("Compilers", 1, [])]
    assert seen_by(ada) == [("Compilers", 1, [grace])]
    assert seen_by(linus) == ([("Compilers", 1, [])] if setting == "only_me" else [("Compilers", 1, [grace])])
