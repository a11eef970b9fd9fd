"""HTTP schemas of the follows service."""
from marshmallow import RAISE, Schema, fields


class FollowArgs(Schema):
    class Meta:
        unknown = RAISE

    notify_on_post = fields.Boolean(load_default=False)


class FollowSchema(Schema):
    follower = fields.String(required=True)
    followee = fields.String(required=True)
    following = fields.Boolean(required=True)
    notify_on_post = fields.Boolean(required=True)
    since = fields.String(required=True, metadata={"format": "date-time"})
