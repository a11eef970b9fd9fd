"""Search by name through HTTP (GET /v1/members?q=): prefixes of words, any case and accents,
the caller's connections first, never a member blocked either way or a closed account, pages.

Each test's members carry a word of their own (the test's suffix) in their names, so the
queries find only them whatever else the session registered."""
from __future__ import annotations

import uuid

import pytest

from tests.support.http import assert_problem
from tests.support.infra import eventually


@pytest.fixture
def word():
    """A name word no other test uses (letters only, so no digit matches another's)."""
    return "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:10])


def search(api, auth, caller, q, **params):
    response = api.get("/v1/members", query_string={"q": q, **params}, headers=auth(caller))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def names(page) -> list[str]:
    return [item["name"] for item in page["items"]]


def indexed(api, auth, caller, q, count):
    return eventually(lambda: len(search(api, auth, caller, q)["items"]) == count,
                      message=f"{count} indexed for {q!r}")


def test_every_word_of_the_query_is_a_prefix_of_a_word_of_the_name(profiles_api, auth, unique, register, word):
    ada, babbage, viewer = unique("ada"), unique("babbage"), unique("viewer")
    register(ada, name=f"Ada Lovelace {word}"), register(babbage, name=f"Charles Babbage {word}")
    indexed(profiles_api, auth, viewer, word, 2)
    assert names(search(profiles_api, auth, viewer, f"ada lov {word[:4]}")) == [f"Ada Lovelace {word}"]
    assert names(search(profiles_api, auth, viewer, f"ADA {word.upper()}")) == [f"Ada Lovelace {word}"]
    assert names(search(profiles_api, auth, viewer, f"{word} lovelace ada")) == [f"Ada Lovelace {word}"]
    assert names(search(profiles_api, auth, viewer, f"{word} ch")) == [f"Charles Babbage {word}"]
    assert names(search(profiles_api, auth, viewer, f"{word} ovelace")) == []  # not a prefix
    assert names(search(profiles_api, auth, viewer, f"{word} lovelacex")) == []


def test_accents_and_case_do_not_matter_either_way(profiles_api, auth, unique, register, word):
    zoe, viewer = unique("zoe"), unique("viewer")
    register(zoe, name=f"Zoë Ångström-Núñez {word}")
    indexed(profiles_api, auth, viewer, word, 1)
    for q in ("zoe angstrom", "ZOË ÅNGSTRÖM", "nunez", "Núñ"):
        assert names(search(profiles_api, auth, viewer, f"{q} {word}")) == [f"Zoë Ångström-Núñez {word}"], q


def test_a_rename_moves_the_member_in_the_index(profiles_api, auth, unique, register, word):
    ada, viewer = unique("ada"), unique("viewer")
    register(ada, name=f"Ada Byron {word}")
    indexed(profiles_api, auth, viewer, f"byron {word}", 1)
    assert profiles_api.patch("/v1/profile", json={"name": f"Ada King {word}"}, headers=auth(ada)).status_code == 200
    indexed(profiles_api, auth, viewer, f"king {word}", 1)
    assert search(profiles_api, auth, viewer, f"byron {word}")["items"] == []


def test_the_callers_connections_come_first(profiles_api, auth, unique, register, connected, word):
    caller, friend, other1, other2 = unique("caller"), unique("friend"), unique("other1"), unique("other2")
    register(caller, name="Caller")
    register(other1, name=f"Aaron {word}"), register(other2, name=f"Abel {word}"), register(friend, name=f"Zed {word}")
    connected(caller, friend)
    indexed(profiles_api, auth, caller, word, 3)
    page = search(profiles_api, auth, caller, word)
    assert [(i["name"], i["connection"]) for i in page["items"]] == [
        (f"Zed {word}", True), (f"Aaron {word}", False), (f"Abel {word}", False)]


def test_members_blocked_either_way_and_closed_accounts_are_never_found(profiles_api, apps, auth, unique, register,
                                                                       word):
    caller, blocked, blocker, closed, kept = (unique(n) for n in ("caller", "blocked", "blocker", "closed", "kept"))
    register(caller, name="Caller")
    for member in (blocked, blocker, closed, kept):
        register(member, name=f"{member.split('-')[0]} {word}")
    indexed(profiles_api, auth, caller, word, 4)
    connections = apps("connections")
    assert connections.put(f"/v1/blocks/{blocked}", headers=auth(caller)).status_code == 204
    assert connections.put(f"/v1/blocks/{caller}", headers=auth(blocker)).status_code == 204
    assert profiles_api.delete("/v1/profile", headers=auth(closed)).status_code == 204
    # The closed account is gone at once (the record decides); the blocks once profiles learns of them.
    assert closed not in [i["member"] for i in search(profiles_api, auth, caller, word)["items"]]
    eventually(lambda: [i["member"] for i in search(profiles_api, auth, caller, word)["items"]] == [kept],
               message="blocked members filtered out")
    assert [i["member"] for i in search(profiles_api, auth, blocked, word)["items"]] == [blocker, kept]


def test_pages_of_up_to_20_follow_one_another_without_repeats(profiles_api, auth, unique, register, connected, word):
    caller = unique("caller")
    register(caller, name="Caller")
    members = [f"{unique('m')}{i:02d}" for i in range(25)]
    for i, member in enumerate(members):
        register(member, name=f"{word} {i:02d}")
    connected(members[7], caller)

    def all_indexed():
        first = search(profiles_api, auth, caller, word)
        rest = search(profiles_api, auth, caller, word, cursor=first["next_cursor"]) if first["next_cursor"] else None
        return len(first["items"]) + len(rest["items"] if rest else []) == 25
    eventually(all_indexed, message="all 25 indexed")
    first = search(profiles_api, auth, caller, word)
    assert len(first["items"]) == 20 and first["next_cursor"]
    second = search(profiles_api, auth, caller, word, cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    seen = [i["member"] for i in first["items"] + second["items"]]
    assert seen[0] == members[7]
    assert sorted(seen) == sorted(members) and len(set(seen)) == 25
    small = search(profiles_api, auth, caller, word, limit=3)
    assert [i["member"] for i in small["items"]] == [members[7], members[0], members[1]]


@pytest.mark.parametrize("params,field", [({"q": "!!!"}, "q"), ({"q": ""}, "q"), ({"q": "a", "limit": 21}, "limit"),
                                          ({"q": "a", "cursor": "not-a-cursor"}, "cursor")])
def test_a_query_without_letters_a_limit_over_20_or_a_forged_cursor_is_a_422(profiles_api, auth, unique, params,
                                                                           field):
    problem = assert_problem(profiles_api.get("/v1/members", query_string=params, headers=auth(unique("ada"))), 422)
    assert field in problem["errors"]


def test_a_renamed_connection_is_found_first_under_the_new_name(profiles_api, auth, unique, register, connected,
                                                               word):
    caller, friend = unique("caller"), unique("friend")
    register(caller, name="Caller"), register(friend, name=f"Old {word}")
    connected(caller, friend)
    assert profiles_api.patch("/v1/profile", json={"name": f"New {word}"}, headers=auth(friend)).status_code == 200
    eventually(lambda: [(i["name"], i["connection"]) for i in search(profiles_api, auth, caller, f"new {word}")["items"]]
               == [(f"New {word}", True)], message="the connection found under the new name")
    assert search(profiles_api, auth, caller, f"old {word}")["items"] == []
