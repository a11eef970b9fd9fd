"""HTTP plumbing every service shares: the app factory helper, problems, auth, pages."""
from shared.http.app import caller, create_service_app, service_settings, service_store

__all__ = ["caller", "create_service_app", "service_settings", "service_store"]
