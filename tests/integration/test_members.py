"""Members in every service: who exists comes from profiles.events into each service's replica;
nobody acts towards a member who does not exist, and a caller without a profile writes nothing.

The replica path runs through the real Kafka and each service's worker; the fallback for the
moments after a registration runs against a real HTTP server standing in for the profiles API.
"""
from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared import store_client
from shared import members
from shared.auth import member_from_header
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from tests.support import members as registry
from tests.support.http import assert_problem
from tests.support.infra import EventPublisher, eventually, free_ports

SERVICES = ("connections", "follows", "feed", "notifications")


# --- acting towards a member who does not exist ----------------------------------------

def _acts(target: str, via: str) -> list[tuple[str, str, str, dict]]:
    """Every acting endpoint that names a member: (service, method, path, json)."""
    return [
        ("connections", "post", "/v1/invitations", {"invitee": target}),
        ("connections", "post", "/v1/introductions", {"target": target, "via": via}),
        ("connections", "post", f"/v1/members/{target}/endorsements", {"skill": "Compilers"}),
        ("connections", "put", f"/v1/blocks/{target}", None),
        ("follows", "put", f"/v1/following/{target}", None),
    ]


ACTS = ["invite", "introduce", "endorse", "block", "follow"]


@pytest.mark.parametrize("act", range(len(ACTS)), ids=ACTS)
def test_acting_towards_a_member_nobody_registered_is_404_member_not_found(apps, auth, unique, act):
    ada, grace = unique("ada"), unique("grace")
    service, method, path, body = _acts(unique.unregistered("ghost"), grace)[act]
    response = getattr(apps(service), method)(path, json=body, headers=auth(ada))
    assert_problem(response, 404, "member_not_found")


def test_an_introduction_via_a_member_nobody_registered_is_404_member_not_found(apps, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    response = apps("connections").post("/v1/introductions", json={"target": grace, "via": unique.unregistered("via")},
                                        headers=auth(ada))
    assert assert_problem(response, 404, "member_not_found")["field"] == "via"


@pytest.mark.parametrize("act", range(len(ACTS)), ids=ACTS)
def test_acting_towards_a_closed_account_is_404_member_not_found(apps, auth, unique, settings, act):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    registry.close(settings, linus)
    service, method, path, body = _acts(linus, grace)[act]
    response = getattr(apps(service), method)(path, json=body, headers=auth(ada))
    assert_problem(response, 404, "member_not_found")


def test_a_registered_member_can_be_followed_and_invited(apps, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    assert apps("follows").put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201
    assert apps("connections").post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).status_code == 201


# --- a caller without a profile --------------------------------------------------------

WRITES = [
    ("connections", "post", "/v1/invitations", {"invitee": "{other}"}),
    ("connections", "patch", "/v1/settings", {"connections_visibility": "connections"}),
    ("connections", "delete", "/v1/blocks/{other}", None),
    ("follows", "put", "/v1/following/{other}", None),
    ("follows", "delete", "/v1/following/{other}", None),
    ("follows", "patch", "/v1/settings", {"followers": "everyone"}),
    ("feed", "post", "/v1/posts", {"text": "Hello"}),
    ("notifications", "post", "/v1/notifications/read-all", None),
    ("notifications", "patch", "/v1/preferences", {"muted_types": []}),
]


def _fill(value, other):
    if isinstance(value, str):
        return value.replace("{other}", other)
    if isinstance(value, dict):
        return {k: _fill(v, other) for k, v in value.items()}
    return value


@pytest.mark.parametrize("service, method, path, body", WRITES, ids=[f"{w[0]}:{w[1]}:{w[2]}" for w in WRITES])
def test_a_caller_who_never_registered_gets_403_profile_required_on_writes(apps, auth, unique, service, method,
                                                                          path, body):
    grace = unique("grace")
    response = getattr(apps(service), method)(_fill(path, grace), json=_fill(body, grace),
                                              headers=auth(unique.unregistered("newcomer")))
    assert_problem(response, 403, "profile_required")


@pytest.mark.parametrize("service, method, path, body", WRITES[:1] + WRITES[3:4] + WRITES[6:7],
                         ids=["invite", "follow", "post"])
def test_a_closed_account_gets_403_profile_required_on_writes(apps, auth, unique, settings, service, method, path,
                                                              body):
    ada, grace = unique("ada"), unique("grace")
    registry.close(settings, ada)
    response = getattr(apps(service), method)(_fill(path, grace), json=_fill(body, grace), headers=auth(ada))
    assert_problem(response, 403, "profile_required")


@pytest.mark.parametrize("service, path, body", [("follows", "/v1/following/{other}", {"notify_on_post": "often"}),
                                                  ("connections", "/v1/invitations", {"invitee": 7})],
                         ids=["follow", "invite"])
def test_a_caller_who_never_registered_gets_profile_required_before_a_422_for_the_body(apps, auth, unique, service,
                                                                                      path, body):
    # These views take the write checks in their first reads, which a bad body never reaches:
    # the checks run after the view's answer, and their refusal is the answer.
    grace = unique("grace")
    method = "put" if service == "follows" else "post"
    response = getattr(apps(service), method)(_fill(path, grace), json=body, headers=auth(unique.unregistered("newcomer")))
    assert_problem(response, 403, "profile_required")


def test_a_caller_who_never_registered_may_read(apps, auth, unique):
    newcomer = unique.unregistered("newcomer")
    assert apps("notifications").get("/v1/notifications", headers=auth(newcomer)).status_code == 200
    assert apps("feed").get("/v1/feed", headers=auth(newcomer)).status_code == 200


# --- the replica -----------------------------------------------------------------------

def _entry(settings, service, member):
    store = store_client.connect(settings.store_url(service))
    return members.lookup(store, service, settings, member)


def test_an_older_member_event_after_a_newer_one_changes_nothing(settings, unique):
    ada = unique.unregistered("ada")
    registry.apply(settings, "member.registered", {"member": ada, "name": "Ada L.", "version": 3})
    registry.apply(settings, "member.registered", {"member": ada, "name": "Ada", "version": 1})
    registry.apply(settings, "member.settings_changed", {"member": ada, "profile_visibility": "connections",
                                                         "version": 5})
    registry.apply(settings, "member.settings_changed", {"member": ada, "profile_visibility": "everyone",
                                                         "version": 4})
    for service in SERVICES:
        entry = _entry(settings, service, ada)
        assert (entry.name, entry.profile_visibility, entry.version) == ("Ada L.", "connections", 5), service


def test_a_later_settings_change_keeps_an_update_of_the_profile_numbered_between(settings, unique):
    """Profile and settings are separate parts of one member's sequence: each keeps its newest."""
    ada = unique.unregistered("ada")
    registry.apply(settings, "member.registered", {"member": ada, "name": "Ada", "version": 1})
    registry.apply(settings, "member.settings_changed", {"member": ada, "profile_visibility": "connections",
                                                         "version": 3})
    registry.apply(settings, "member.updated", {"member": ada, "name": "Ada Lovelace", "version": 2})
    entry = _entry(settings, "connections", ada)
    assert (entry.name, entry.profile_visibility) == ("Ada Lovelace", "connections")


def test_a_closed_account_stays_closed_and_keeps_no_name(settings, unique):
    ada = unique.unregistered("ada")
    registry.apply(settings, "member.registered", {"member": ada, "name": "Ada", "version": 1})
    registry.apply(settings, "member.closed", {"member": ada, "version": 4})
    registry.apply(settings, "member.updated", {"member": ada, "name": "Ada again", "version": 5})
    entry = _entry(settings, "follows", ada)
    assert (entry.state, entry.name) == (members.CLOSED, "")


def test_the_replica_key_is_in_the_members_shard(settings):
    key = members.key("follows", settings, "ada")
    assert key.startswith("follows:{s") and key.endswith(":member:ada")


def test_each_worker_learns_a_registration_from_profiles_events(settings, workers, apps, auth, unique):
    """The replica's real path: member.registered on Kafka → each service's worker → its replica."""
    for service in SERVICES:
        workers(service)
    ada, grace = unique("ada"), unique.unregistered("grace")
    publish = EventPublisher(settings)
    try:
        publish(new_event("profiles", "member.registered", {
            "member": grace, "name": "Grace Hopper", "headline": "Rear admiral", "at": rfc3339(now_ms()),
            "version": 1}))
    finally:
        publish.close()
    for service in SERVICES:
        eventually(lambda: _entry(settings, service, grace), 20, message=f"{service} learns of {grace}")
    assert _entry(settings, "notifications", grace).name == "Grace Hopper"
    assert apps("follows").put(f"/v1/following/{ada}", headers=auth(grace)).status_code == 201


# --- the moments after a registration: the profiles API answers a miss ----------------

class StandInProfiles:
    """A real HTTP server answering as the profiles API would: 200 for a registered member's
    ``GET /v1/profile`` and for ``GET /v1/members/{id}/profile`` of a registered id, else 404."""

    def __init__(self, settings):
        self.registered: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (path, the member its token names)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                caller = member_from_header(self.headers.get("Authorization", ""), settings.jwt_secret)
                stand_in.requests.append((self.path, caller))
                if self.path == "/v1/profile":
                    found, access = caller in stand_in.registered, None
                else:
                    member = self.path.split("/")[3]
                    found, access = member in stand_in.registered, "limited"
                body = json.dumps({"access": access} if found else {"code": "member_not_found"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json" if found else "application/problem+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        port, = free_ports(1)
        self.url = f"http://127.0.0.1:{port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def profiles(settings):
    stand_in = StandInProfiles(settings)
    yield stand_in
    stand_in.close()


@pytest.fixture
def apps_asking(settings, profiles):
    """``apps_asking("follows")``: a service whose profiles API is the stand-in."""
    import importlib

    made = {}
    asking = settings.replace(base_urls={**settings.base_urls, "profiles": profiles.url})

    def client(service):
        if service not in made:
            made[service] = importlib.import_module(f"services.{service}.app").create_app(
                {"TESTING": True}, settings=asking).test_client()
        return made[service]
    return client


def test_a_follow_and_an_invitation_right_after_a_registration_are_not_refused(apps_asking, profiles, auth,
                                                                                unique):
    """Neither the follower's nor the followee's member.registered has reached the replicas yet:
    the misses ask the profiles API, with the caller's own token, and it knows both."""
    ada, grace = unique.unregistered("ada"), unique.unregistered("grace")
    profiles.registered |= {ada, grace}
    assert apps_asking("follows").put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201
    invited = apps_asking("connections").post("/v1/invitations", json={"invitee": ada}, headers=auth(grace))
    assert invited.status_code == 201, invited.json
    assert (f"/v1/members/{grace}/profile", ada) in profiles.requests  # with the caller's own token
    assert ("/v1/profile", grace) in profiles.requests


def test_a_member_the_profiles_api_does_not_know_either_is_refused(apps_asking, profiles, auth, unique):
    ada, ghost = unique("ada"), unique.unregistered("ghost")
    assert_problem(apps_asking("follows").put(f"/v1/following/{ghost}", headers=auth(ada)), 404, "member_not_found")
    assert_problem(apps_asking("follows").put(f"/v1/following/{ada}", headers=auth(ghost)), 403, "profile_required")


def test_a_tombstone_asks_nobody(apps_asking, profiles, auth, unique, settings):
    ada, linus = unique("ada"), unique("linus")
    registry.close(settings, linus)
    profiles.registered.add(linus)  # what the profiles API says does not reopen a closed account
    assert_problem(apps_asking("follows").put(f"/v1/following/{linus}", headers=auth(ada)), 404, "member_not_found")
    assert profiles.requests == []


def test_a_member_the_replica_knows_asks_nobody(apps_asking, profiles, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    assert apps_asking("follows").put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201
    assert profiles.requests == []


def test_a_miss_stands_when_the_profiles_api_does_not_answer(apps, auth, unique):
    """The test settings' profiles URL is a port where nothing listens."""
    ada, ghost = unique("ada"), unique.unregistered("ghost")
    assert_problem(apps("follows").put(f"/v1/following/{ghost}", headers=auth(ada)), 404, "member_not_found")


# --- profile_access --------------------------------------------------------------------

def _access(apps, auth, viewer, member):
    response = apps("connections").get(f"/v1/relationships/{member}", headers=auth(viewer))
    assert response.status_code == 200, response.json
    return response.json["profile_access"]


def test_profile_access_follows_the_relationship_and_the_members_setting(apps, auth, unique, settings, connect):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    assert _access(apps, auth, ada, grace) == "limited"
    registry.apply(settings, "member.settings_changed", {"member": grace, "profile_visibility": "connections",
                                                         "version": 2})
    assert _access(apps, auth, ada, grace) == "minimal"
    connect(ada, grace)
    assert _access(apps, auth, ada, grace) == "full"
    assert apps("connections").put(f"/v1/blocks/{ada}", headers=auth(linus)).status_code == 204
    assert _access(apps, auth, ada, linus) == "none"
    assert _access(apps, auth, linus, ada) == "none"


def test_profile_access_is_none_for_an_unknown_or_closed_member(apps, auth, unique, settings):
    ada, linus = unique("ada"), unique("linus")
    registry.close(settings, linus)
    assert _access(apps, auth, ada, linus) == "none"
    assert _access(apps, auth, ada, unique.unregistered("ghost")) == "none"


def test_profile_access_right_after_a_registration_is_what_the_profiles_api_serves(apps_asking, profiles, auth,
                                                                                    unique):
    ada, grace = unique("ada"), unique.unregistered("grace")
    profiles.registered.add(grace)
    assert _access(apps_asking, auth, ada, grace) == "limited"


# --- recommendations ---------------------------------------------------------------------

def test_the_recipient_of_a_recommendation_is_notified(settings, workers, apps, auth, unique):
    workers("notifications")
    ada, grace = unique("ada"), unique("grace")
    publish = EventPublisher(settings)
    try:
        publish(new_event("profiles", "recommendation.written", {
            "recommendation_id": uuid.uuid4().hex, "author": ada, "recipient": grace,
            "relationship": "worked together", "excerpt": "A brilliant engineer", "at": rfc3339(now_ms())}))
    finally:
        publish.close()

    def received():
        items = apps("notifications").get("/v1/notifications", headers=auth(grace)).json["items"]
        return [n for n in items if n["type"] == "recommendation_received"]
    found, = eventually(received, 20, message="recommendation_received")
    assert (found["actors"], found["text"]) == ([ada], "A brilliant engineer")
    assert found["summary"] == f'{ada} wrote you a recommendation: "A brilliant engineer"'
