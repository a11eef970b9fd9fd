"""The notifications service's app factory."""
from __future__ import annotations

from flask import Flask

from shared import store_client
from shared.http import create_service_app, members
from shared.http.app import accept_credential
from shared.settings import Settings


# Store connections the open streams of one API process share for their reads.
LIVE_POOL_SIZE = 10


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    from services.notifications import live
    from services.notifications import store as keys
    from services.notifications.api import blp, ticket_holder

    app = create_service_app("notifications", [blp], settings=settings, test_config=test_config,
                             description="Each member's notifications: grouped, counted, live.")
    # Open streams share one pub/sub connection per process (the hub's) and a small pool for
    # their short reads: a stream waits for a free connection rather than opening its own. The
    # read timeout is past the pub/sub wait (1 s).
    keepalive = app.config.setdefault("NOTIFICATIONS_KEEPALIVE_SECONDS", live.KEEPALIVE_SECONDS)
    settings = app.config["RAPPORT_SETTINGS"]
    keys.use_shards(settings.shards)
    # (On a Redis Cluster the bound is per node.)
    store = store_client.connect(settings.store_url("notifications"), socket_timeout=10, pool_timeout=10,
                                 pool_size=app.config.get("NOTIFICATIONS_LIVE_POOL_SIZE", LIVE_POOL_SIZE))
    app.extensions["notifications.live"] = live.LiveHub(store,
                                                        settings.live_streams_per_member, keepalive)
    # A browser's EventSource cannot send Authorization: the stream also takes a stream ticket.
    accept_credential(app, "notifications.Stream", ticket_holder)
    members.install(app)
    return app
