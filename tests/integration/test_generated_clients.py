"""Clients generated from each service's OpenAPI document (openapi-python-client, at test time)
play a whole scenario over HTTP against the real services, their workers, Kafka and Redis:
invite → accept → follow → post → feed → notifications, and the live stream.

The apps are served by werkzeug on free loopback ports (a generated httpx client cannot reach
an in-process test client), wired to the session's settings.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

from shared.auth import mint_token
from shared.settings import SERVICES
from tests.support.infra import eventually


@pytest.fixture(scope="module")
def generated(tmp_path_factory, settings):
    """``generated["feed"]`` → the package openapi-python-client made from the feed's document."""
    root = tmp_path_factory.mktemp("generated-clients")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff post-hook
    packages = {}
    for service in SERVICES:
        app = importlib.import_module(f"services.{service}.app").create_app({"TESTING": True}, settings=settings)
        document = root / f"{service}.json"
        document.write_text(app.test_client().get("/openapi.json").get_data(as_text=True))
        name = f"rapport_{service}_client"
        done = subprocess.run([str(bin_dir / "openapi-python-client"), "generate", "--path", str(document),
                               "--meta", "none", "--output-path", str(root / name)],
                              capture_output=True, text=True, env=env, timeout=120)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "Warning" not in output and "Error" not in output, output  # every part of the document is understood
        packages[service] = name
    sys.path.insert(0, str(root))
    try:
        yield {service: importlib.import_module(name) for service, name in packages.items()}
    finally:
        sys.path.remove(str(root))
        for module in [m for m in sys.modules if m.startswith(tuple(packages.values()))]:
            del sys.modules[module]


@pytest.fixture(scope="module")
def served(settings, workers):
    """``served["feed"]`` → the base URL of that service's app, served over HTTP; every worker runs."""
    for service in SERVICES:
        workers(service)
    servers, urls = [], {}
    for service in SERVICES:
        config = {"TESTING": True, "NOTIFICATIONS_KEEPALIVE_SECONDS": 1}
        app = importlib.import_module(f"services.{service}.app").create_app(config, settings=settings)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[service] = f"http://127.0.0.1:{server.server_port}"
    yield urls
    for server in servers:
        server.shutdown()


def _module(package, path: str):
    return importlib.import_module(f"{package.__name__}.{path}")


def test_generated_clients_play_invite_accept_follow_post_feed_and_notifications(generated, served, settings,
                                                                                 unique):
    conn, fol, feed, notif = (generated[s] for s in ("connections", "follows", "feed", "notifications"))
    ada, grace, carol = unique("ada"), unique("grace"), unique("carol")

    def client(package, service, member):
        return package.AuthenticatedClient(base_url=served[service], token=mint_token(member, settings.jwt_secret),
                                           timeout=httpx.Timeout(10.0))

    # invite → accept
    send = _module(conn, "api.connections.send_invitation")
    args = _module(conn, "models.invitation_args").InvitationArgs(invitee=grace, message="Let's connect")
    sent = send.sync_detailed(client=client(conn, "connections", ada), body=args, idempotency_key=unique("key"))
    assert sent.status_code == 201, sent.content
    invitation = sent.parsed
    assert type(invitation).__name__ == "Invitation" and invitation.invitee == grace
    assert sent.headers["Location"] == f"/v1/invitations/{invitation.id}"

    accept = _module(conn, "api.connections.accept_invitation")
    accepted = accept.sync(invitation.id, client=client(conn, "connections", grace))
    assert accepted.status.value == "accepted"

    relationship = _module(conn, "api.connections.get_relationship").sync(
        ada, client=client(conn, "connections", grace))
    assert relationship.degree == _module(conn, "models.degree").Degree.VALUE_1
    assert relationship.invitation is None and relationship.connected is True

    # follow
    follow = _module(fol, "api.following.follow_member")
    followed = follow.sync_detailed(ada, client=client(fol, "follows", carol))
    assert followed.status_code == 201 and followed.parsed.following is True

    # the live stream of ada's notifications; carol's follow may reach it before or after it
    # opens, so the listener waits for dana's, made once it is open
    dana = unique("dana")
    stream = _module(notif, "api.notifications.stream_notifications")
    events: list[dict] = []
    opened = threading.Event()

    def listen():
        with client(notif, "notifications", ada).get_httpx_client().stream(**stream._get_kwargs()) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            opened.set()
            event = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "notification":
                    events.append(json.loads(line.removeprefix("data: ")))
                    if events[-1]["type"] == "new_follower" and dana in events[-1]["actors"]:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(15), "the notification stream never opened"
    assert follow.sync_detailed(ada, client=client(fol, "follows", dana)).status_code == 201

    # post → feed
    create = _module(feed, "api.feed.create_post")
    post_args = _module(feed, "models.post_args").PostArgs(text="Hello, network")
    created = create.sync_detailed(client=client(feed, "feed", ada), body=post_args)
    assert created.status_code == 201, created.content
    post = created.parsed
    assert created.headers["Location"] == f"/v1/posts/{post.id}"

    get_feed = _module(feed, "api.feed.get_feed")
    for reader in (carol, grace):  # a follower, and a connection (followed automatically)
        eventually(lambda: post.id in [p.id for p in get_feed.sync(client=client(feed, "feed", reader)).items],
                   30, message=f"the post in {reader}'s feed")

    # notifications
    list_notifications = _module(notif, "api.notifications.list_notifications")

    def types_of(member):
        return {n.type_.value for n in list_notifications.sync(client=client(notif, "notifications", member)).items}

    eventually(lambda: {"invitation_accepted", "new_follower"} <= types_of(ada), 30,
               message="ada's notifications")
    eventually(lambda: "invitation_received" in types_of(grace), 30, message="grace's notifications")

    listener.join(30)
    assert not listener.is_alive(), f"no new_follower event naming {dana} on the stream (got {events})"
