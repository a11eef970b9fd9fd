"""HTTP endpoints of the notifications service."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.notifications import inbox
from services.notifications.schemas import NotificationListArgs, NotificationPageSchema
from shared.clock import rfc3339
from shared.http import caller, service_store

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="A member's notifications.")


@blp.route("/notifications")
class Notifications(MethodView):
    @blp.arguments(NotificationListArgs, location="query")
    @blp.response(200, NotificationPageSchema)
    def get(self, args):
        """The caller's notifications, newest first."""
        items, next_cursor = inbox.page(service_store(), caller(), args["limit"], args["cursor"])
        return {
            "items": [{"id": n.id, "type": n.type, "actors": n.actors, "actor_count": len(n.actors),
                       "object": n.object, "summary": n.summary, "created_at": rfc3339(n.created_at_ms),
                       "read": n.read} for n in items],
            "next_cursor": next_cursor,
        }
