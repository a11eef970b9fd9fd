"""HTTP endpoints of the notifications service: views translate HTTP, rules live in ``inbox``."""
from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.notifications import inbox, live
from services.notifications.schemas import (NotificationListArgs, NotificationPageSchema, PreferencesSchema,
                                            StreamArgs, StreamTicketSchema, UnreadCountSchema)
from shared.clock import rfc3339
from shared.http import caller, service_settings, service_store
from shared.http.conventions import conditional, location
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


@blp.route("/notifications/stream-ticket")
class StreamTicket(MethodView):
    @operation("createStreamTicket")
    @blp.response(201, StreamTicketSchema, description=(
        "A ticket that opens the caller's stream once, within `stream_ticket_ttl_seconds` (60 s): "
        "`GET /v1/notifications/stream?ticket=<ticket>` (Location), with no Authorization header. "
        "It is good for nothing else: no other operation accepts it, as a parameter or a bearer token."))
    def post(self):
        """A short-lived, single-use ticket for the notifications stream.

        For clients that cannot send Authorization on the stream (a browser's EventSource): the
        ticket goes in the stream's URL in place of the bearer token, which never may."""
        ticket, expires_ms = live.issue_ticket(service_store(), caller(), service_settings().stream_ticket_ttl_seconds)
        return ({"ticket": ticket, "expires_at": rfc3339(expires_ms)}, 201,
                location("notifications.Stream", ticket=ticket))


def ticket_holder() -> str | None:
    """The member a stream's ``?ticket=`` was issued to (using it up), or None without one."""
    ticket = request.args.get("ticket")
    return None if ticket is None else live.redeem_ticket(service_store(), ticket)


STREAM_EVENTS = (
    "Server-sent events (`text/event-stream`), named by `event:`:\n\n"
    "- `event: notification`: a new notification, or a grouped one that grew, as it now is; `data` is "
    "the notification's JSON (as in `listNotifications`: `id`, `type`, `actors`, `actor_count`, `object`, "
    "`summary`, `text`, `created_at`, `read`); its `id` is the position to send back as `Last-Event-ID` "
    "(or `?last_event_id=`) on reconnection, to get what was missed.\n\n"
    "No other event names are sent. Besides: `retry: 2000` (reconnect after 2 s) and a `: connected` "
    "comment first; a `: keep-alive` comment every 5 s; a `: closed ...` comment when a newer stream of "
    "the member replaced this one (at most `live_streams_per_member`). A stream ends after 5 min and "
    "the client reconnects (EventSource does so by itself).\n\n"
    "Authenticate with `Authorization: Bearer <token>`, or, where a client cannot send headers, with "
    "`?ticket=` from `createStreamTicket` (once; a reconnection needs a new ticket). A token in the URL "
    "(`?access_token=`...) is refused: 401 `token_in_url`.")


@blp.route("/notifications/stream")
class Stream(MethodView):
    @operation("streamNotifications")
    # The media type tells a generated client to read the answer as it comes, not buffer it whole.
    @blp.doc(description=STREAM_EVENTS, responses={200: {"content": {"text/event-stream": {"schema": {
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
