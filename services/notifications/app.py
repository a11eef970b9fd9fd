"""The notifications service's app factory."""
from __future__ import annotations

import redis
from flask import Flask

from shared.http import create_service_app
from shared.settings import Settings


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    from services.notifications import live
    from services.notifications.api import blp

    app = create_service_app("notifications", [blp], settings=settings, test_config=test_config,
                             description="Each member's notifications: grouped, counted, live.")
    # Open streams block on XREAD for a keep-alive period: they get their own connection pool,
    # with a read timeout longer than that block (the store client's default is 5 s), and room
    # for one connection per open stream (gunicorn's --worker-connections bounds them).
    keepalive = app.config.setdefault("NOTIFICATIONS_KEEPALIVE_SECONDS", live.KEEPALIVE_SECONDS)
    settings = app.config["RAPPORT_SETTINGS"]
    app.extensions["notifications.live"] = redis.Redis.from_url(
        settings.store_url("notifications"), decode_responses=True, socket_timeout=keepalive + 10,
        max_connections=app.config.get("NOTIFICATIONS_MAX_STREAMS", 10_000))
    return app
