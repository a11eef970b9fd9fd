"""The connections service's app factory."""
from __future__ import annotations

from flask import Flask

from shared.http import create_service_app, members
from shared.settings import Settings


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    from services.connections.api import blp

    app = create_service_app("connections", [blp], settings=settings, test_config=test_config,
                             description="Two-way connections: invitations, degrees, mutual connections.")
    members.install(app)
    return app
