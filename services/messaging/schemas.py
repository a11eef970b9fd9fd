"""HTTP schemas of the messaging service."""
from marshmallow import RAISE, Schema, fields, validate

from shared.auth import MEMBER_ID
from shared.pages import PageArgs, page_schema

TEXT_FIELD = {"metadata": {"description": "1 to 8,000 characters."}}


class StartArgs(Schema):
    class Meta:
        unknown = RAISE

    participants = fields.List(
        fields.String(validate=validate.Regexp(MEMBER_ID)), required=True, validate=validate.Length(max=100),
        metadata={"description": "The other members: one for a conversation of two, 2 to 49 for a group. "
                                 "The caller is always in it."})
    text = fields.String(required=True, validate=validate.Length(max=100_000), **TEXT_FIELD)


class SendArgs(Schema):
    class Meta:
        unknown = RAISE

    text = fields.String(required=True, validate=validate.Length(max=100_000), **TEXT_FIELD)


class ReadArgs(Schema):
    class Meta:
        unknown = RAISE

    up_to = fields.String(load_default=None, validate=validate.Length(max=100), metadata={
        "description": "A message id of the conversation; absent: the newest. Receipts only move forward."})


class MessageSchema(Schema):
    id = fields.String(required=True)
    conversation_id = fields.String(required=True)
    sender = fields.String(required=True, allow_none=True,
                           metadata={"description": "null: a former member (their account is closed)."})
    text = fields.String(required=True)
    sent_at = fields.String(required=True, metadata={"format": "date-time"})


MessagePageSchema = page_schema(MessageSchema)


class LastMessageSchema(Schema):
    sender = fields.String(required=True, allow_none=True,
                           metadata={"description": "null: a former member (their account is closed)."})
    excerpt = fields.String(required=True, metadata={"description": "The first 200 characters."})
    sent_at = fields.String(required=True, metadata={"format": "date-time"})


class ConversationSummarySchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["direct", "group"]))
    participants = fields.List(fields.String(), required=True,
                               metadata={"description": "Everyone in it, the caller too; former members left out."})
    last_message = fields.Nested(LastMessageSchema, required=True)
    unread_count = fields.Integer(required=True, metadata={"description": "The others' messages after the "
                                                                          "caller's read receipt."})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


ConversationPageSchema = page_schema(ConversationSummarySchema, name="ConversationPageSchema")


class ParticipantSchema(Schema):
    member = fields.String(required=True)
    read_up_to = fields.String(required=True, allow_none=True,
                               metadata={"description": "The id of the last message they read; null: none."})


class ConversationSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["direct", "group"]))
    participants = fields.List(fields.Nested(ParticipantSchema), required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


class StartedSchema(Schema):
    conversation = fields.Nested(ConversationSchema, required=True)
    message = fields.Nested(MessageSchema, required=True)


class ReceiptSchema(Schema):
    conversation_id = fields.String(required=True)
    read_up_to = fields.String(required=True, allow_none=True)
    unread_count = fields.Integer(required=True)


class UnreadCountSchema(Schema):
    count = fields.Integer(required=True, metadata={"description": "Conversations holding unread messages."})


class StreamArgs(Schema):
    ticket = fields.String(load_default=None, validate=validate.Length(max=100), metadata={"description": (
        "A stream ticket (POST /v1/conversations/stream-ticket) instead of the Authorization header, "
        "for clients that cannot send it (a browser's EventSource). Used up by the request that opens "
        "the stream; a reconnection asks for a new one.")})
    last_event_id = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9]{1,20}-[0-9]{1,20}$"),
                                  metadata={"description": "For clients that cannot send the Last-Event-ID "
                                                           "header."})


class StreamTicketSchema(Schema):
    ticket = fields.String(required=True, metadata={"description": "Pass as `?ticket=` to GET "
                                                                   "/v1/conversations/stream, once."})
    expires_at = fields.String(required=True, metadata={"format": "date-time",
                                                        "description": "Unused after this, it opens nothing."})


class MessageListArgs(PageArgs):
    pass
