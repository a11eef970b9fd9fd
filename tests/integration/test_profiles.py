"""Profiles through HTTP, with the real Redis and Kafka: registering, every field's rule, the
view table for each kind of viewer with the setting both ways, settings, closing an account."""
from __future__ import annotations

import pytest
import redis

from services.profiles.store import Keys
from shared import store_client
from tests.support.http import assert_problem
from tests.support.infra import events_of, eventually, read_topic

FULL = {
    "name": "Ada Lovelace",
    "headline": "Analyst of engines",
    "location": "London",
    "industry": "Mathematics",
    "about": "Notes on the Analytical Engine.",
    "contact": {"email": "ada@example.org", "phone": "+44 20 7946 0000", "website": "https://ada.example.org"},
    "experience": [
        {"title": "Analyst", "organization": "Analytical Engine", "start": "1842-09",
         "description": "Wrote the first program."},
        {"title": "Translator", "organization": "Taylor's Scientific Memoirs", "start": "1842-01", "end": "1843-08",
         "description": "Translated Menabrea."},
    ],
    "education": [{"school": "Home tuition", "degree": "None", "field": "Mathematics", "start": "1828-01"}],
    "skills": ["Mathematics", "Programming", "Poetical science", "Translation"],
    "accomplishments": [{"kind": "publication", "title": "Sketch of the Analytical Engine", "issuer": "Taylor",
                         "date": "1843-08"}],
}
HIDDEN_FROM_LIMITED = {"contact", "experience", "education", "skills", "accomplishments", "recommendations",
                       "settings", "registered_at", "updated_at"}


@pytest.fixture
def store(settings):
    # One node or a cluster (whose scan_iter walks every primary).
    return store_client.connect(settings.store_url("profiles"), decode_responses=True)


def view(api, auth, viewer, member):
    return api.get(f"/v1/members/{member}/profile", headers=auth(viewer))


def test_a_first_put_registers_with_201_and_a_second_replaces_with_200(profiles_api, auth, unique, settings):
    ada = unique("ada")
    first = profiles_api.put("/v1/profile", json=FULL, headers=auth(ada))
    assert first.status_code == 201, first.get_json()
    assert first.headers["Location"] == "/v1/profile"
    assert first.get_json()["access"] == "self"
    again = profiles_api.put("/v1/profile", json={"name": "Ada King"}, headers=auth(ada))
    assert again.status_code == 200
    assert again.get_json()["name"] == "Ada King" and again.get_json()["experience"] == []
    events = read_topic(settings, "profiles.events",
                        lambda evs: events_of(evs, "member.updated", member=ada))
    registered = events_of(events, "member.registered", member=ada)[0].data
    updated = events_of(events, "member.updated", member=ada)[0].data
    assert (registered["name"], registered["version"]) == ("Ada Lovelace", 1)
    assert (updated["name"], updated["version"]) == ("Ada King", 2)


def test_patch_changes_only_the_given_fields(profiles_api, auth, unique, register):
    ada = unique("ada")
    register(ada, **FULL)
    patched = profiles_api.patch("/v1/profile", json={"headline": "Countess", "skills": ["Poetry"]}, headers=auth(ada))
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert (body["headline"], body["location"]) == ("Countess", "London")
    assert [s["name"] for s in body["skills"]] == ["Poetry"]
    assert body["contact"] == FULL["contact"]


def test_a_caller_who_never_registered_gets_403_profile_required_on_every_write(profiles_api, auth, unique):
    ghost, ada = unique("ghost"), unique("ada")
    for response in (profiles_api.patch("/v1/profile", json={"headline": "x"}, headers=auth(ghost)),
                     profiles_api.patch("/v1/settings", json={"profile_visibility": "connections"},
                                        headers=auth(ghost)),
                     profiles_api.delete("/v1/profile", headers=auth(ghost)),
                     profiles_api.post(f"/v1/members/{ada}/recommendations",
                                       json={"relationship": "worked together", "text": "Great."},
                                       headers=auth(ghost))):
        assert_problem(response, 403, "profile_required")
    assert_problem(profiles_api.get("/v1/profile", headers=auth(ghost)), 404, "member_not_found")


def test_skills_fold_duplicates_case_insensitively_and_keep_the_first_spelling(profiles_api, auth, unique, register):
    ada = unique("ada")
    body = register(ada, skills=["Machine Learning", "machine  learning", "MACHINE LEARNING", "Lua"])
    assert [s["name"] for s in body["skills"]] == ["Machine Learning", "Lua"]


def test_a_position_without_end_is_current(profiles_api, auth, unique, register):
    ada = unique("ada")
    body = register(ada, experience=FULL["experience"])
    assert [p["current"] for p in body["experience"]] == [True, False]
    assert body["current_positions"] == [{"title": "Analyst", "organization": "Analytical Engine"}]


LONG = "x" * 5000


@pytest.mark.parametrize("body,field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "\u200b"}, "name"),
    ({"name": "a" * 101}, "name"),
    ({"name": "Ada", "headline": "h" * 221}, "headline"),
    ({"name": "Ada", "location": LONG}, "location"),
    ({"name": "Ada", "industry": LONG}, "industry"),
    ({"name": "Ada", "about": "a" * 2601}, "about"),
    ({"name": "Ada", "contact": {"email": "not-an-email"}}, "contact.email"),
    ({"name": "Ada", "contact": {"phone": "call me"}}, "contact.phone"),
    ({"name": "Ada", "contact": {"website": "javascript:alert(1)"}}, "contact.website"),
    ({"name": "Ada", "contact": {"fax": "1"}}, "contact.fax"),
    ({"name": "Ada", "experience": [{"title": "A", "organization": "B", "start": "2024-13"}]}, "experience.0.start"),
    ({"name": "Ada", "experience": [{"title": "A", "organization": "B"}]}, "experience.0.start"),
    ({"name": "Ada", "experience": [{"organization": "B", "start": "2024-01"}]}, "experience.0.title"),
    ({"name": "Ada", "experience": [{"title": "A", "start": "2024-01"}]}, "experience.0.organization"),
    ({"name": "Ada", "experience": [{"title": "A", "organization": "B", "start": "2024-05", "end": "2024-01"}]},
     "experience.0.end"),
    ({"name": "Ada", "experience": [{"title": "A", "organization": "B", "start": "2024-01",
                                     "description": "d" * 2001}]}, "experience.0.description"),
    ({"name": "Ada", "experience": [{"title": "A", "organization": "B", "start": "2024-01"}] * 51}, "experience"),
    ({"name": "Ada", "education": [{"degree": "BSc"}]}, "education.0.school"),
    ({"name": "Ada", "education": [{"school": "S", "start": "24-01"}]}, "education.0.start"),
    ({"name": "Ada", "education": [{"school": "S"}] * 21}, "education"),
    ({"name": "Ada", "skills": ["s" * 81]}, "skills.0"),
    ({"name": "Ada", "skills": [f"skill {i}" for i in range(101)]}, "skills"),
    ({"name": "Ada", "accomplishments": [{"kind": "trophy", "title": "T"}]}, "accomplishments.0.kind"),
    ({"name": "Ada", "accomplishments": [{"kind": "award"}]}, "accomplishments.0.title"),
    ({"name": "Ada", "accomplishments": [{"kind": "award", "title": "T", "date": "May 2024"}]},
     "accomplishments.0.date"),
    ({"name": "Ada", "accomplishments": [{"kind": "award", "title": "T"}] * 101}, "accomplishments"),
    ({"name": "Ada", "nickname": "A"}, "nickname"),
])
def test_each_wrong_field_is_refused_with_a_422_naming_it(profiles_api, auth, unique, body, field):
    problem = assert_problem(profiles_api.put("/v1/profile", json=body, headers=auth(unique("ada"))), 422)
    assert field in problem["errors"], problem


def test_a_patch_with_a_wrong_field_is_refused_and_changes_nothing(profiles_api, auth, unique, register):
    ada = unique("ada")
    register(ada, headline="Analyst")
    problem = assert_problem(profiles_api.patch("/v1/profile", json={"headline": "ok", "name": ""},
                                                headers=auth(ada)), 422)
    assert "name" in problem["errors"]
    assert profiles_api.get("/v1/profile", headers=auth(ada)).get_json()["headline"] == "Analyst"


# --- the view table -------------------------------------------------------------------------

def _set_visibility(api, auth, member, value):
    response = api.patch("/v1/settings", json={"profile_visibility": value}, headers=auth(member))
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("visibility", ["everyone", "connections"])
def test_the_member_sees_everything_settings_included(profiles_api, auth, unique, register, visibility):
    ada = unique("ada")
    register(ada, **FULL)
    _set_visibility(profiles_api, auth, ada, visibility)
    body = view(profiles_api, auth, ada, ada).get_json()
    assert body["access"] == "self"
    assert body["settings"] == {"profile_visibility": visibility}
    assert body["contact"] == FULL["contact"] and len(body["experience"]) == 2 and body["education"]


@pytest.mark.parametrize("visibility", ["everyone", "connections"])
def test_a_connection_gets_the_full_view_whatever_the_setting(profiles_api, auth, unique, register, connected,
                                                              visibility):
    ada, grace = unique("ada"), unique("grace")
    register(ada, **FULL), register(grace)
    _set_visibility(profiles_api, auth, ada, visibility)
    connected(ada, grace)
    body = view(profiles_api, auth, grace, ada).get_json()
    assert body["access"] == "full"
    assert body["contact"] == FULL["contact"]
    assert [p["title"] for p in body["experience"]] == ["Analyst", "Translator"]
    assert body["education"][0]["school"] == "Home tuition"
    assert body["accomplishments"][0]["title"] == "Sketch of the Analytical Engine"
    assert body["recommendations"] == []
    assert "settings" not in body


def test_anyone_else_gets_the_limited_view_while_visibility_is_everyone(profiles_api, auth, unique, register):
    ada, stranger = unique("ada"), unique("stranger")
    register(ada, **FULL)
    body = view(profiles_api, auth, stranger, ada).get_json()
    assert body["access"] == "limited"
    assert {k: body[k] for k in ("name", "headline", "location", "industry", "about")} == {
        k: FULL[k] for k in ("name", "headline", "location", "industry", "about")}
    assert body["current_positions"] == [{"title": "Analyst", "organization": "Analytical Engine"}]
    assert [s["name"] for s in body["top_skills"]] == ["Mathematics", "Programming", "Poetical science"]
    assert not HIDDEN_FROM_LIMITED & body.keys()
    # Nothing hidden leaks under another name either: no past position, description or contact.
    text = str(body)
    for hidden in ("Translator", "Wrote the first program", "ada@example.org", "Home tuition", "Taylor"):
        assert hidden not in text


def test_a_follower_gets_the_limited_view_too(profiles_api, apps, auth, unique, register, workers):
    workers("follows")
    ada, fan = unique("ada"), unique("fan")
    register(ada, **FULL), register(fan)
    assert apps("follows").put(f"/v1/following/{ada}", headers=auth(fan)).status_code == 201
    assert view(profiles_api, auth, fan, ada).get_json()["access"] == "limited"


def test_anyone_else_gets_name_and_headline_only_while_visibility_is_connections(profiles_api, auth, unique,
                                                                               register):
    ada, stranger = unique("ada"), unique("stranger")
    register(ada, **FULL)
    _set_visibility(profiles_api, auth, ada, "connections")
    body = view(profiles_api, auth, stranger, ada).get_json()
    assert body == {"member": ada, "access": "minimal", "name": FULL["name"], "headline": FULL["headline"]}
    _set_visibility(profiles_api, auth, ada, "everyone")
    assert view(profiles_api, auth, stranger, ada).get_json()["access"] == "limited"


def test_an_unknown_id_answers_404_member_not_found(profiles_api, auth, unique):
    assert_problem(view(profiles_api, auth, unique("ada"), unique("nobody")), 404, "member_not_found")


@pytest.mark.parametrize("direction", ["viewer blocked the member", "member blocked the viewer"])
def test_a_member_blocked_either_way_answers_404(profiles_api, apps, auth, unique, register, connected, direction):
    ada, grace = unique("ada"), unique("grace")
    register(ada), register(grace)
    connected(ada, grace)
    blocker, blocked = (grace, ada) if direction == "viewer blocked the member" else (ada, grace)
    assert apps("connections").put(f"/v1/blocks/{blocked}", headers=auth(blocker)).status_code == 204
    eventually(lambda: view(profiles_api, auth, grace, ada).status_code == 404, message="the block reached profiles")
    assert_problem(view(profiles_api, auth, grace, ada), 404, "member_not_found")
    assert_problem(view(profiles_api, auth, ada, grace), 404, "member_not_found")
    assert apps("connections").delete(f"/v1/blocks/{blocked}", headers=auth(blocker)).status_code == 204
    eventually(lambda: view(profiles_api, auth, grace, ada).status_code == 200, message="the unblock reached profiles")
    assert view(profiles_api, auth, grace, ada).get_json()["access"] == "limited"  # the connection is not restored


def test_a_removed_connection_falls_back_to_the_limited_view(profiles_api, apps, auth, unique, register, connected):
    ada, grace = unique("ada"), unique("grace")
    register(ada), register(grace)
    connected(ada, grace)
    assert apps("connections").delete(f"/v1/connections/{grace}", headers=auth(ada)).status_code == 204
    eventually(lambda: view(profiles_api, auth, grace, ada).get_json()["access"] == "limited",
               message="the removal reached profiles")


def test_skills_show_endorsement_counts_learnt_from_the_connections_service(profiles_api, apps, auth, unique,
                                                                          register, connected):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    register(ada, skills=["Mathematics", "Programming", "Poetry", "Lua"]), register(grace), register(linus)
    connected(ada, grace), connected(ada, linus)
    endorse = lambda who, skill: apps("connections").post(  # noqa: E731
        f"/v1/members/{ada}/endorsements", json={"skill": skill}, headers=auth(who))
    assert endorse(grace, "lua").status_code == 201
    assert endorse(linus, "LUA").status_code == 201
    assert endorse(linus, "Poetry").status_code == 201

    def counts():
        own = profiles_api.get("/v1/profile", headers=auth(ada)).get_json()
        return {s["name"]: s["endorsements"] for s in own["skills"]}
    eventually(lambda: counts() == {"Mathematics": 0, "Programming": 0, "Poetry": 1, "Lua": 2},
               message="endorsements counted")
    limited = view(profiles_api, auth, unique("stranger"), ada).get_json()
    assert [(s["name"], s["endorsements"]) for s in limited["top_skills"]] == [("Lua", 2), ("Poetry", 1),
                                                                              ("Mathematics", 0)]


# --- settings -----------------------------------------------------------------------------

def test_settings_hold_profile_visibility_and_a_change_emits_settings_changed(profiles_api, auth, unique, register,
                                                                             settings):
    ada = unique("ada")
    register(ada)
    assert profiles_api.get("/v1/settings", headers=auth(ada)).get_json() == {"profile_visibility": "everyone"}
    _set_visibility(profiles_api, auth, ada, "connections")
    _set_visibility(profiles_api, auth, ada, "connections")  # no change: no second event
    assert profiles_api.get("/v1/settings", headers=auth(ada)).get_json() == {"profile_visibility": "connections"}
    events = read_topic(settings, "profiles.events",
                        lambda evs: events_of(evs, "member.settings_changed", member=ada))
    changed = events_of(events, "member.settings_changed", member=ada)
    assert [(e.data["profile_visibility"], e.data["version"]) for e in changed] == [("connections", 2)]


def test_a_wrong_visibility_is_a_422(profiles_api, auth, unique, register):
    ada = unique("ada")
    register(ada)
    problem = assert_problem(profiles_api.patch("/v1/settings", json={"profile_visibility": "friends"},
                                                headers=auth(ada)), 422)
    assert "profile_visibility" in problem["errors"]


# --- closing ------------------------------------------------------------------------------

def _holding(store: redis.Redis, member: str) -> list[str]:
    """Every profiles key that names ``member`` in its name or its contents, but the member's own
    write-limit windows and idempotency records: shared plumbing of every write, they expire on
    their own (a minute; a day) and hold nothing of the profile."""
    found = []
    for key in store.scan_iter("profiles:*", count=1000):
        if key.startswith("profiles:rate-limit:") or ":idempotency" in key:
            continue
        kind = store.type(key)
        if member in key:
            found.append(key)
            continue
        if kind == "hash":
            content = [*store.hkeys(key), *store.hvals(key)]
        elif kind == "set":
            content = list(store.smembers(key))
        elif kind == "zset":
            content = store.zrange(key, 0, -1)
        elif kind == "string":
            content = [store.get(key) or ""]
        else:
            content = []
        if any(member in item for item in content):
            found.append(key)
    return found


def test_closing_erases_everything_but_the_tombstone(profiles_api, apps, auth, unique, register, connected, store,
                                                    settings):
    ada, grace, linus, blocked = unique("ada"), unique("grace"), unique("linus"), unique("blocked")
    register(ada, name=f"Ada Lovelace {ada}", skills=["Lua"]), register(grace, name="Grace Hopper", skills=["Cobol"])
    register(linus, name="Linus T"), register(blocked, name="Blocked One")
    connected(ada, grace), connected(ada, linus)
    connections = apps("connections")
    assert connections.post(f"/v1/members/{ada}/endorsements", json={"skill": "Lua"},
                            headers=auth(grace)).status_code == 201
    assert connections.post(f"/v1/members/{grace}/endorsements", json={"skill": "Cobol"},
                            headers=auth(ada)).status_code == 201
    assert connections.put(f"/v1/blocks/{blocked}", headers=auth(ada)).status_code == 204
    to_ada = profiles_api.post(f"/v1/members/{ada}/recommendations", json={"relationship": "colleague", "text": "Yes"},
                               headers=auth(grace)).get_json()["id"]
    assert profiles_api.post(f"/v1/recommendations/{to_ada}/accept", headers=auth(ada)).status_code == 200
    by_ada = profiles_api.post(f"/v1/members/{linus}/recommendations", json={"relationship": "mentor", "text": "Sure"},
                               headers=auth(ada)).get_json()["id"]
    eventually(lambda: profiles_api.get("/v1/recommendations?direction=given", headers=auth(ada)).get_json()["items"],
               message="the given list")
    eventually(lambda: [s["endorsements"] for s in profiles_api.get("/v1/profile", headers=auth(grace))
                        .get_json()["skills"]] == [1], message="ada's endorsement of grace counted")
    eventually(lambda: profiles_api.get(f"/v1/members?q=lovelace {ada}", headers=auth(linus)).get_json()["items"],
               message="ada in the search index")

    closed = profiles_api.delete("/v1/profile", headers=auth(ada))
    assert closed.status_code == 204
    assert profiles_api.delete("/v1/profile", headers=auth(ada)).status_code == 204  # idempotent
    keys = Keys(settings.shards)
    eventually(lambda: _holding(store, ada) == [keys.member(ada)], timeout=20,
               message="only the tombstone names the closed member")
    assert store.hgetall(keys.member(ada)).keys() == {"status", "version", "closed_at"}
    assert _holding(store, to_ada) == [] and _holding(store, by_ada) == []
    for response in (view(profiles_api, auth, grace, ada), profiles_api.get("/v1/profile", headers=auth(ada)),
                     profiles_api.get("/v1/settings", headers=auth(ada))):
        assert_problem(response, 404, "member_not_found")
    assert [s["endorsements"] for s in profiles_api.get("/v1/profile", headers=auth(grace)).get_json()["skills"]] == [0]
    found = profiles_api.get(f"/v1/members?q=lovelace {ada}", headers=auth(linus)).get_json()["items"]
    assert found == []
    events = read_topic(settings, "profiles.events", lambda evs: events_of(evs, "member.closed", member=ada))
    assert len(events_of(events, "member.closed", member=ada)) == 1


def test_a_closed_account_cannot_register_again(profiles_api, auth, unique, register):
    ada = unique("ada")
    register(ada)
    assert profiles_api.delete("/v1/profile", headers=auth(ada)).status_code == 204
    assert_problem(profiles_api.put("/v1/profile", json={"name": "Ada"}, headers=auth(ada)), 403, "account_closed")
    assert_problem(profiles_api.patch("/v1/profile", json={"name": "Ada"}, headers=auth(ada)), 403, "profile_required")
