"""HTTP schemas of the notifications service."""
from marshmallow import Schema, fields

from shared.pages import PageArgs, page_schema


class NotificationListArgs(PageArgs):
    unread = fields.Boolean(load_default=False)


class NotificationSchema(Schema):
    id = fields.String(required=True)
    type = fields.String(required=True)
    actors = fields.List(fields.String(), required=True)
    actor_count = fields.Integer(required=True)
    object = fields.String(allow_none=True, required=True)
    summary = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    read = fields.Boolean(required=True)


NotificationPageSchema = page_schema(NotificationSchema)
