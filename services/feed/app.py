"""The feed service's app factory."""
from __future__ import annotations

from flask import Flask

from shared.http import create_service_app, members
from shared.settings import Settings, load_settings
from shared import store_client


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    from services.feed import store as keys
    from services.feed.api import blp
    from services.feed.timelines import Timelines

    settings = settings or load_settings()
    app = create_service_app("feed", [blp], settings=settings, test_config=test_config,
                             description="Posts, likes, comments, reshares and the home feed.")
    keys.use_shards(settings.shards)
    cache = store_client.connect(settings.cache_url)
    app.extensions["feed.cache"] = cache
    app.extensions["feed.timelines"] = Timelines(cache, settings)
    members.install(app)
    return app
