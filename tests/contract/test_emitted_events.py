"""What producers actually emit keeps the contract: each producer is driven through its HTTP
API against the real Redis, its outbox relayed to the real Kafka, and every event read back is
checked against its JSON Schema in docs/events and against the fields its consumers rely on."""
from __future__ import annotations

import importlib.util
import json
import time
import uuid

import jsonschema
import pytest

from shared.auth import mint_token
from tests.contract.contracts import CONSUMING_SERVICES, consumers_of, declared, json_schema, missing_fields
from tests.support import members
from tests.support.infra import read_topic

TOPICS = ("connections.events", "follows.events", "feed.events", "profiles.events", "messaging.events")

class Scenario:
    """A small day of the network, among members of this module only (their ids share a suffix)."""

    def __init__(self, apps, settings):
        self.suffix = uuid.uuid4().hex[:8]
        self.apps, self.settings = apps, settings
        self.expected: set[str] = set()  # the event types the steps that ran must have caused

    def member(self, name: str) -> str:
        member = f"{name}-{self.suffix}"
        members.register(self.settings, member)
        return member

    def call(self, service: str, method: str, path: str, member: str, ok: tuple[int, ...], **kw):
        headers = {"Authorization": f"Bearer {mint_token(member, self.settings.jwt_secret)}"}
        response = getattr(self.apps(service), method)(path, headers=headers, **kw)
        assert response.status_code in ok, (method, path, response.status_code, response.get_json())
        return response.get_json(silent=True)

    def run(self) -> None:
        ada, grace, linus, hopper, babbage = map(self.member, ("ada", "grace", "linus", "hopper", "babbage"))
        c = lambda *a, **kw: self.call("connections", *a, **kw)  # noqa: E731
        f = lambda *a, **kw: self.call("follows", *a, **kw)  # noqa: E731
        p = lambda *a, **kw: self.call("feed", *a, **kw)  # noqa: E731
        pr = lambda *a, **kw: self.call("profiles", *a, **kw)  # noqa: E731

        for member in (ada, grace, linus, hopper, babbage):
            pr("put", "/v1/profile", member, (201,), json={"name": member.split("-")[0].title(), "headline": "Engineer"})
        pr("put", "/v1/profile", ada, (200,), json={"name": "Ada Lovelace", "skills": ["Compilers"]})
        pr("patch", "/v1/settings", ada, (200,), json={"profile_visibility": "connections"})
        self.expected |= {"profiles.member.registered", "profiles.member.updated", "profiles.member.settings_changed"}

        sent = c("post", "/v1/invitations", ada, (201,), json={"invitee": grace, "message": "Hello Grace"})
        c("post", f"/v1/invitations/{sent['id']}/accept", grace, (200,))
        withdrawn = c("post", "/v1/invitations", ada, (201,), json={"invitee": linus})
        c("post", f"/v1/invitations/{withdrawn['id']}/withdraw", ada, (200,))
        ignored = c("post", "/v1/invitations", hopper, (201,), json={"invitee": ada})
        c("post", f"/v1/invitations/{ignored['id']}/ignore", ada, (200,))
        self.expected |= {"connections.invitation.sent", "connections.invitation.accepted",
                          "connections.invitation.withdrawn", "connections.invitation.ignored",
                          "follows.follow.created"}  # the automatic follows of the new connection
        c("post", f"/v1/members/{grace}/endorsements", ada, (201,), json={"skill": "Compilers"})
        self.expected.add("connections.endorsement.added")
        # the recommendation waits for the profiles worker to learn of the connection
        deadline = time.monotonic() + 15
        while True:
            written = self.apps("profiles").post(
                f"/v1/members/{grace}/recommendations", json={"relationship": "colleague", "text": "Sharp."},
                headers={"Authorization": f"Bearer {mint_token(ada, self.settings.jwt_secret)}"})
            if written.status_code == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert written.status_code == 201, written.get_json()
        pr("post", f"/v1/recommendations/{written.get_json()['id']}/accept", grace, (200,))
        pr("post", f"/v1/recommendations/{written.get_json()['id']}/hide", grace, (200,))
        self.expected |= {"profiles.recommendation.written", "profiles.recommendation.accepted",
                          "profiles.recommendation.hidden"}
        # grace, connected to ada, linus and babbage, introduces them to ada
        for requester in (linus, babbage):
            inv = c("post", "/v1/invitations", requester, (201,), json={"invitee": grace})
            c("post", f"/v1/invitations/{inv['id']}/accept", grace, (200,))
        intro = c("post", "/v1/introductions", linus, (201,), json={"target": ada, "via": grace, "note": "Hi"})
        c("post", f"/v1/introductions/{intro['id']}/forward", grace, (200,))
        intro = c("post", "/v1/introductions", babbage, (201,), json={"target": ada, "via": grace})
        c("post", f"/v1/introductions/{intro['id']}/decline", grace, (200,))
        self.expected |= {"connections.introduction.requested", "connections.introduction.forwarded",
                          "connections.introduction.declined"}
        m = lambda *a, **kw: self.call("messaging", *a, **kw)  # noqa: E731
        started = m("post", "/v1/conversations", ada, (201,), json={"participants": [grace], "text": "Hello"})
        m("post", f"/v1/conversations/{started['conversation']['id']}/read", grace, (200,), json={})
        self.expected |= {"messaging.message.sent", "messaging.conversation.read"}
        c("delete", f"/v1/connections/{grace}", ada, (204,))
        self.expected |= {"connections.connection.removed", "follows.follow.removed"}
        # between members the feed steps below do not involve
        c("put", f"/v1/blocks/{babbage}", ada, (204,))
        c("delete", f"/v1/blocks/{babbage}", ada, (204,))
        self.expected |= {"connections.block.added", "connections.block.removed"}

        f("put", f"/v1/following/{hopper}", linus, (201,), json={"notify_on_post": True})
        f("put", f"/v1/following/{hopper}", linus, (200,), json={"notify_on_post": False})
        f("patch", "/v1/settings", hopper, (200,), json={"followers": "connections"})
        self.expected |= {"follows.follow.created", "follows.follow.updated", "follows.settings.updated"}

        post = p("post", "/v1/posts", hopper, (201,), json={"text": "Nanoseconds, in a length of wire."})
        p("post", "/v1/posts", linus, (201,), json={"text": "Worth reading", "reshare_of": post["id"]})
        p("put", f"/v1/posts/{post['id']}/like", linus, (204,))
        p("delete", f"/v1/posts/{post['id']}/like", linus, (204,))
        p("post", f"/v1/posts/{post['id']}/comments", linus, (201,), json={"text": "Brilliant."})
        p("delete", f"/v1/posts/{post['id']}", hopper, (204,))
        self.expected |= {"feed.post.created", "feed.post.liked", "feed.post.unliked", "feed.comment.added",
                          "feed.post.deleted"}
        f("delete", f"/v1/following/{hopper}", linus, (204,))
        pr("delete", "/v1/profile", babbage, (204,))
        self.expected.add("profiles.member.closed")

    def ours(self, record) -> bool:
        """Keys are member pairs or authors, ours carry the suffix; a conversation's key is its
        id: ours are those whose participants carry it."""
        if self.suffix in (record.key or b"").decode():
            return True
        return any(self.suffix in p for p in json.loads(record.value).get("data", {}).get("participants", ()))


@pytest.fixture(scope="module")
def emitted(apps, settings, workers):
    """Every event the scenario caused, as the raw JSON read back from Kafka."""
    for service in ("connections", "follows", "feed", "profiles", "messaging"):
        workers(service)  # their outbox relays (and follows' automatic follows)
    scenario = Scenario(apps, settings)
    scenario.run()
    events: list[dict] = []
    for topic in TOPICS:
        wanted = {t for t in scenario.expected if t.startswith(topic.split(".")[0] + ".")}

        def seen(records, wanted=wanted):
            names = {".".join(json.loads(r.value)["type"].split(".")[1:-1]) for r in records if scenario.ours(r)}
            return wanted <= names
        records = read_topic(settings, topic, seen, timeout=30, raw=True)
        events += [json.loads(r.value) for r in records if scenario.ours(r)]
    return scenario, events


def _producer_in_repository(type_: str) -> bool:
    """Whether the service producing ``type_`` is in this repository (the consumers of the
    profiles service's events may be ready before it is)."""
    return importlib.util.find_spec(f"services.{type_.split('.')[1]}") is not None


def _short(type_: str) -> str:
    return ".".join(type_.split(".")[1:-1])


def test_every_expected_event_was_emitted(emitted):
    scenario, events = emitted
    assert scenario.expected <= {_short(e["type"]) for e in events}


def test_every_emitted_event_validates_against_its_published_json_schema_formats_included(emitted):
    _, events = emitted
    failures = []
    for event in events:
        schema = json_schema(event["type"])
        assert schema is not None, f"{event['type']} was emitted but has no schema in docs/events"
        try:
            # With the format checker: every time a service stamps is an RFC 3339 date-time.
            jsonschema.validate(event, schema, format_checker=jsonschema.FormatChecker())
        except jsonschema.ValidationError as exc:
            failures.append(f"{event['type']}: {exc.message} at {list(exc.absolute_path)}")
    assert failures == []


def test_every_emitted_event_carries_the_fields_its_consumers_rely_on(emitted):
    _, events = emitted
    failures = [f"{event['type']} lacks {missing} that {service} relies on"
                for event in events
                for service, needed in consumers_of(event["type"]).items()
                if (missing := missing_fields(needed, event["data"]))]
    assert failures == []


def test_every_type_a_consumer_relies_on_was_emitted_and_checked(emitted):
    """Nothing a consumer relies on goes unchecked: a renamed or missing route fails here."""
    _, events = emitted
    consumed = {_short(t) for s in CONSUMING_SERVICES for t in declared(s)
                if not t.startswith("rapport.feed.fanout") and _producer_in_repository(t)}
    checked = {_short(e["type"]) for e in events}
    assert consumed - checked == set()
