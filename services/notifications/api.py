"""HTTP endpoints of the notifications service: views translate HTTP, rules live in ``inbox``."""
from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.notifications import inbox, live
from services.notifications.schemas import (NotificationListArgs, NotificationPageSchema, PreferencesSchema,
                                            StreamArgs, UnreadCountSchema)
from shared.http import caller, service_store
from shared.http.conventions import conditional
from shared.http.openapi import operation

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="A member's notifications.")


@blp.route("/notifications")
class Notifications(MethodView):
    @operation("listNotifications")
    @blp.arguments(NotificationListArgs, location="query")
    @blp.response(200, NotificationPageSchema)
    def get(self, args):
        """The caller's notifications, newest first (``unread=true``: only the unread ones)."""
        items, next_cursor = inbox.page(service_store(), caller(), args["limit"], args["cursor"],
                                        unread_only=args["unread"])
        return {"items": [live.body(n) for n in items], "next_cursor": next_cursor}


@blp.route("/notifications/unread-count")
class UnreadCount(MethodView):
    @conditional
    @operation("countUnreadNotifications")
    @blp.response(200, UnreadCountSchema)
    def get(self):
        """How many of the caller's notifications are unread (constant time)."""
        return {"count": inbox.unread_count(service_store(), caller())}


@blp.route("/notifications/read-all")
class ReadAll(MethodView):
    @operation("markAllNotificationsRead")
    @blp.response(204)
    def post(self):
        """Mark every notification of the caller read."""
        inbox.mark_all_read(service_store(), caller())


@blp.route("/notifications/<string:notification_id>/read")
class ReadOne(MethodView):
    @operation("markNotificationRead", 404)
    @blp.response(204)
    def post(self, notification_id):
        """Mark one notification read."""
        inbox.mark_read(service_store(), caller(), notification_id)


@blp.route("/notifications/stream")
class Stream(MethodView):
    @operation("streamNotifications")
    # The media type tells a generated client to read the answer as it comes, not buffer it whole.
    @blp.doc(responses={200: {"content": {"text/event-stream": {"schema": {
        "type": "string", "description": "`id: <id>`, `event: notification`, `data: <notification JSON>` "
                                         "blocks, and `: keep-alive` comments"}}}}})
    @blp.arguments(StreamArgs, location="query")
    @blp.response(200, content_type="text/event-stream", description=(
        "Server-sent events: one `notification` event per new or grown notification, its `id` to send "
        "back as `Last-Event-ID` on reconnection; a keep-alive comment every 5 s; a stream ends after "
        "5 min and the client reconnects."))
    def get(self, args):
        """The caller's new notifications, live. Serve under gevent: each open stream holds a connection."""
        hub, member = current_app.extensions["notifications.live"], caller()
        # Checked before the first byte: a bad id is a 422, not a stream that breaks.
        after = live.start_after(hub.store, member, request.headers.get("Last-Event-ID") or args["last_event_id"])
        return Response(live.events(hub, member, after), status=200, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@blp.route("/preferences")
class Preferences(MethodView):
    @conditional
    @operation("getPreferences")
    @blp.response(200, PreferencesSchema)
    def get(self):
        """The caller's notification preferences."""
        return {"muted_types": inbox.muted_types(service_store(), caller())}

    @operation("updatePreferences")
    @blp.arguments(PreferencesSchema)
    @blp.response(200, PreferencesSchema)
    def patch(self, args):
        """Replace the muted types. Notifications of a muted type are not stored, and do not come back
        when the type is unmuted."""
        return {"muted_types": inbox.set_muted_types(service_store(), caller(), args["muted_types"])}
