"""HTTP schemas of the notifications service."""
from marshmallow import RAISE, Schema, fields, validate

from services.notifications.inbox import TYPES
from shared.pages import PageArgs, page_schema


class NotificationListArgs(PageArgs):
    unread = fields.Boolean(load_default=False, metadata={"description": "Only the unread ones."})


class NotificationSchema(Schema):
    id = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    actors = fields.List(fields.String(), required=True,
                         metadata={"description": "Who did it, most recent first (at most 10)."})
    actor_count = fields.Integer(required=True, metadata={"description": "How many distinct members did it."})
    object = fields.String(allow_none=True, required=True,
                           metadata={"description": "What it is about: a post, invitation or introduction "
                                                    "id, or the endorsed skill."})
    summary = fields.String(required=True, metadata={"description": 'e.g. "Ada and 3 others liked your post"'})
    text = fields.String(allow_none=True, metadata={
        "description": "The words that came with it: the invitation's message, the introduction's note, "
                       "the latest comment's or the post's excerpt."})
    created_at = fields.String(required=True, metadata={"format": "date-time",
                                                         "description": "Last activity: a group that grows "
                                                                        "moves up."})
    read = fields.Boolean(required=True)


NotificationPageSchema = page_schema(NotificationSchema)


class UnreadCountSchema(Schema):
    count = fields.Integer(required=True)


class PreferencesSchema(Schema):
    """A muted type is not stored at all: unmuting does not bring back what happened meanwhile."""

    class Meta:
        unknown = RAISE

    muted_types = fields.List(fields.String(validate=validate.OneOf(TYPES)), required=True,
                              validate=validate.Length(max=len(TYPES)),
                              metadata={"description": "Notification types not to store. One of: "
                                                       + ", ".join(TYPES)})


class StreamArgs(Schema):
    ticket = fields.String(load_default=None, validate=validate.Length(max=100), metadata={"description": (
        "A stream ticket (POST /v1/notifications/stream-ticket) instead of the Authorization header, "
        "for clients that cannot send it (a browser's EventSource). Used up by the request that "
        "opens the stream; a reconnection asks for a new one.")})
    last_event_id = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9]{1,20}-[0-9]{1,20}$"),
                                  metadata={"description": "For clients that cannot send the Last-Event-ID "
                                                           "header."})


class StreamTicketSchema(Schema):
    ticket = fields.String(required=True, metadata={"description": "Pass as `?ticket=` to GET "
                                                                   "/v1/notifications/stream, once."})
    expires_at = fields.String(required=True, metadata={"format": "date-time",
                                                        "description": "Unused after this, it opens nothing."})
