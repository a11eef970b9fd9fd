"""The messaging service's app factory."""
from __future__ import annotations

from flask import Flask

from shared import store_client

from shared.http import create_service_app
from shared.http.app import accept_credential
from shared.settings import Settings

# Store connections the open streams of one API process share for their reads.
LIVE_POOL_SIZE = 10


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    from services.messaging.api import blp, ticket_holder
    from services.messaging.conversations import Messaging
    from shared import live
    from shared.http import members

    app = create_service_app("messaging", [blp], settings=settings, test_config=test_config,
                             description="Conversations between connections: messages, read receipts, live.")
    members.install(app)
    settings = app.config["RAPPORT_SETTINGS"]
    app.extensions["messaging"] = Messaging(app.extensions["rapport.store"], settings)
    # As the notifications stream: one pub/sub connection per process and a small pool for the
    # streams' short reads.
    keepalive = app.config.setdefault("MESSAGING_KEEPALIVE_SECONDS", live.KEEPALIVE_SECONDS)
    # (On a Redis Cluster the bound is per node.)
    stream_store = store_client.connect(settings.store_url("messaging"), socket_timeout=10, pool_timeout=10,
                                        pool_size=app.config.get("MESSAGING_LIVE_POOL_SIZE", LIVE_POOL_SIZE))
    app.extensions["messaging.live"] = live.LiveHub(stream_store, app.extensions["messaging"].keys.live,
                                                    settings.live_streams_per_member, keepalive,
                                                    service="messaging")
    # What the streams show is read through the same small pool.
    app.extensions["messaging.stream"] = Messaging(stream_store, settings)
    accept_credential(app, "conversations.Stream", ticket_holder)
    return app
