"""The follows service's app factory."""
from __future__ import annotations

from flask import Flask

from shared.http import create_service_app, members
from shared.settings import Settings


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    from services.follows.api import blp, members_blp, settings_blp

    app = create_service_app("follows", [blp, members_blp, settings_blp], settings=settings, test_config=test_config,
                             description="One-way follows: no approval, public counts, private lists.")
    members.install(app)
    return app
