"""HTTP endpoints of the messaging service: views translate HTTP, rules live in
``conversations`` and ``inbox``."""
from __future__ import annotations

import json

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from services.messaging import conversations, inbox, live
from services.messaging.conversations import Conversation, Messaging, message_id
from services.messaging.schemas import (
    ConversationPageSchema,
    ConversationSchema,
    MessageListArgs,
    MessagePageSchema,
    MessageSchema,
    ReadArgs,
    ReceiptSchema,
    SendArgs,
    StartArgs,
    StartedSchema,
    StreamArgs,
    StreamTicketSchema,
    UnreadCountSchema,
)
from shared import live as sse
from shared.clock import rfc3339
from shared.http import caller, service_settings, service_store
from shared.http.app import first_reads, joins_write_limits
from shared.http.conventions import location, next_page
from shared.http.idempotency import idempotent
from shared.http.openapi import operation
from shared.pages import PageArgs, decode_cursor, encode_cursor

blp = Blueprint("conversations", __name__, url_prefix="/v1",
                description="Conversations between connections: messages, read receipts, a live stream.")


def _messaging() -> Messaging:
    return current_app.extensions["messaging"]


def _summary(c: Conversation, viewer: str) -> dict:
    at = rfc3339(c.last_at_ms)
    return {"id": c.id, "kind": c.kind, "participants": c.participants,
            "last_message": {"sender": c.last_sender, "excerpt": c.last_excerpt, "sent_at": at},
            "unread_count": c.unread.get(viewer, 0), "updated_at": at}


def _detail(c: Conversation) -> dict:
    return {"id": c.id, "kind": c.kind,
            "participants": [{"member": p, "read_up_to": message_id(c.id, c.read_up_to[p]) if c.read_up_to[p] else None}
                             for p in c.participants],
            "created_at": rfc3339(c.created_at_ms), "updated_at": rfc3339(c.last_at_ms)}


@blp.route("/conversations")
class Conversations(MethodView):
    # A hot read. A schema instance, not the class: webargs would build one per request.
    @operation("listConversations")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, ConversationPageSchema)
    def get(self, args):
        """The caller's conversations, newest activity first, each with its last message and the
        caller's unread count. The order may lag a new message by milliseconds."""
        member = caller()
        items, next_cursor = inbox.page(_messaging(), member, args["limit"], args["cursor"])
        # ``_summary`` builds ConversationPageSchema's items as they are shown: the page is
        # encoded at once, without a marshmallow pass (flask-smorest passes a Response through;
        # the schema still documents it).
        next_page(next_cursor)
        return current_app.response_class(
            json.dumps({"items": [_summary(c, member) for c in items], "next_cursor": next_cursor},
                       separators=(",", ":")), mimetype="application/json")

    @operation("startConversation", 403, 404, idempotent=True)
    @blp.arguments(StartArgs)
    @blp.response(201, StartedSchema)
    @blp.alt_response(200, schema=StartedSchema, description="The two already had a conversation: the message "
                                                             "is appended to it.")
    def post(self, args):
        """Start a conversation with its first message.

        Two members have one conversation: writing again to the same member appends to it (200).
        A group names 2 to 49 others. 403 ``not_connected`` (``not_connected`` lists who) unless the
        caller is connected to each; 403 ``messaging_refused`` to a member a block stands between;
        422 ``no_participants``, ``cannot_message_self``, ``duplicate_participants``,
        ``too_many_participants``, ``empty_text``, ``text_too_long``."""
        member = caller()

        def create():
            conversation, message, created = conversations.start(
                _messaging(), member, args["participants"], args["text"], request.headers.get("Idempotency-Key"))
            return {"conversation": _detail(conversation), "message": live.message_body(message)}, \
                201 if created else 200

        body, status = idempotent(service_store(), "messaging.start", member, create)
        if status == 201:
            return body, 201, location("conversations.ConversationById", conversation_id=body["conversation"]["id"])
        return body, status


@blp.route("/conversations/unread-count")
class UnreadCount(MethodView):
    @operation("countUnreadConversations")
    @blp.response(200, UnreadCountSchema)
    def get(self):
        """How many of the caller's conversations hold messages they have not read: the badge."""
        return {"count": inbox.unread_count(_messaging(), caller())}


@blp.route("/conversations/stream-ticket")
class StreamTicket(MethodView):
    @operation("createConversationStreamTicket")
    @blp.response(201, StreamTicketSchema, description=(
        "A ticket that opens the caller's stream once, within `stream_ticket_ttl_seconds` (60 s): "
        "`GET /v1/conversations/stream?ticket=<ticket>` (Location), with no Authorization header."))
    def post(self):
        """A short-lived, single-use ticket for the conversations stream (a browser's EventSource
        cannot send Authorization; the bearer token never goes in a URL)."""
        m = _messaging()
        ticket, expires_ms = sse.issue_ticket(m.store, m.keys.live, caller(),
                                              service_settings().stream_ticket_ttl_seconds)
        return ({"ticket": ticket, "expires_at": rfc3339(expires_ms)}, 201,
                location("conversations.Stream", ticket=ticket))


def ticket_holder() -> str | None:
    """The member a stream's ``?ticket=`` was issued to (using it up), or None without one."""
    ticket = request.args.get("ticket")
    m = _messaging()
    return None if ticket is None else sse.redeem_ticket(m.store, m.keys.live, ticket, live.TICKET_ISSUER)


STREAM_EVENTS = (
    "Server-sent events (`text/event-stream`), named by `event:`:\n\n"
    "- `event: message`: a new message in one of the caller's conversations (theirs too); `data` is the "
    "message's JSON (`id`, `conversation_id`, `sender`, `text`, `sent_at`).\n"
    "- `event: read`: a participant's read receipt moved; `data` is `conversation_id`, `member`, `read_up_to` "
    "(a message id).\n\n"
    "Each event's `id` is the position to send back as `Last-Event-ID` (or `?last_event_id=`) on reconnection, "
    "to get what was missed. Besides: `retry: 2000` and a `: connected` comment first; a `: keep-alive` comment "
    "every 5 s; a `: closed ...` comment when a newer stream of the member replaced this one (at most "
    "`live_streams_per_member`). A stream ends after 5 min and the client reconnects.\n\n"
    "Authenticate with `Authorization: Bearer <token>`, or with `?ticket=` from "
    "`createConversationStreamTicket` (once). A token in the URL is refused: 401 `token_in_url`.")


@blp.route("/conversations/stream")
class Stream(MethodView):
    @operation("streamConversations")
    @blp.doc(description=STREAM_EVENTS, responses={200: {"content": {"text/event-stream": {"schema": {
        "type": "string", "description": "`id: <id>`, `event: message|read`, `data: <JSON>` blocks, and "
                                         "`: keep-alive` comments"}}}}})
    @blp.arguments(StreamArgs, location="query")
    @blp.response(200, content_type="text/event-stream", description=(
        "Server-sent events: `message` and `read` events, each `id` to send back as `Last-Event-ID`; a "
        "keep-alive comment every 5 s; a stream ends after 5 min and the client reconnects."))
    def get(self, args):
        """New messages and read receipts in the caller's conversations, live. Served under gevent."""
        hub, m, member = current_app.extensions["messaging.live"], current_app.extensions["messaging.stream"], caller()
        after = sse.start_after(m.store, m.keys.live_stream(member),
                                request.headers.get("Last-Event-ID") or args["last_event_id"])
        return Response(live.events(hub, m, member, after), status=200, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@blp.route("/conversations/<string:conversation_id>")
class ConversationById(MethodView):
    @operation("getConversation", 404)
    @blp.response(200, ConversationSchema)
    def get(self, conversation_id):
        """The conversation's participants and how far each has read (read receipts)."""
        return _detail(conversations.load(_messaging(), conversation_id, caller()))

    @operation("hideConversation", 404)
    @blp.response(204)
    def delete(self, conversation_id):
        """Hide the conversation from the caller's list, for them alone; a new message brings it back."""
        m = _messaging()
        inbox.hide(m, caller(), conversations.load(m, conversation_id, caller()))


@blp.route("/conversations/<string:conversation_id>/messages")
class Messages(MethodView):
    @operation("listMessages", 404)
    @blp.arguments(MessageListArgs, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, args, conversation_id):
        """The conversation's messages, newest first. After a removal the history stays readable."""
        before = int(decode_cursor(args["cursor"])[0]) if args["cursor"] else None
        items, next_before = conversations.messages_page(_messaging(), caller(), conversation_id, args["limit"],
                                                         before)
        return {"items": [live.message_body(msg) for msg in items],
                "next_cursor": encode_cursor(next_before, "") if next_before else None}

    @joins_write_limits
    @operation("sendMessage", 403, 404, idempotent=True)
    @blp.arguments(SendArgs)
    @blp.response(201, MessageSchema)
    def post(self, args, conversation_id):
        """Send a message. 403 ``not_connected`` in a conversation of two no longer connected;
        403 ``messaging_refused`` across a block; 404 ``conversation_not_found`` for a non-participant;
        422 ``empty_text``, ``text_too_long``."""
        member = caller()

        def create():
            # The write's limit hit, the caller's entry and the pair records: one round trip.
            message = conversations.send(_messaging(), member, conversation_id, args["text"],
                                         request.headers.get("Idempotency-Key"), reads=first_reads)
            return live.message_body(message), 201

        body, status = idempotent(service_store(), f"messaging.send.{conversation_id}", member, create)
        return body, status


@blp.route("/conversations/<string:conversation_id>/read", methods=["POST"])
class Read(MethodView):
    @operation("readConversation", 404)
    @blp.arguments(ReadArgs, required=False)
    @blp.response(200, ReceiptSchema)
    def post(self, args, conversation_id):
        """Move the caller's read receipt up to a message (default: the newest). Receipts only move
        forward: an older message leaves it where it is. 422 ``message_not_found``."""
        seq, unread = conversations.read(_messaging(), caller(), conversation_id, (args or {}).get("up_to"))
        return {"conversation_id": conversation_id, "read_up_to": message_id(conversation_id, seq) if seq else None,
                "unread_count": unread}
