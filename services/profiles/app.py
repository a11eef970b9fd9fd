"""The profiles service's app factory."""
from __future__ import annotations

from flask import Flask

from shared.http import create_service_app
from shared.settings import Settings


def create_app(test_config: dict | None = None, settings: Settings | None = None) -> Flask:
    from services.profiles.api import members_blp, profile_blp, recommendations_blp, settings_blp

    return create_service_app("profiles", [profile_blp, members_blp, recommendations_blp, settings_blp],
                              settings=settings, test_config=test_config,
                              description="Members and their profiles: what others see follows the relationship; "
                                          "search by name; recommendations.")
