"""HTTP schemas of the follows service."""
from marshmallow import RAISE, Schema, fields, validate

from services.follows.follow_setting import CHOICES
from shared.pages import page_schema


class FollowArgs(Schema):
    class Meta:
        unknown = RAISE

    # Absent: a new follow has no post alerts, an existing one keeps its choice.
    notify_on_post = fields.Boolean(metadata={"description": "Post alerts for this followee."})


class FollowSchema(Schema):
    follower = fields.String(required=True)
    followee = fields.String(required=True)
    following = fields.Boolean(required=True)
    notify_on_post = fields.Boolean(required=True)
    since = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


class FollowEdgeSchema(Schema):
    member = fields.String(required=True)
    since = fields.String(required=True, metadata={"format": "date-time"})


FollowEdgePageSchema = page_schema(FollowEdgeSchema)


class FollowStatsSchema(Schema):
    followers = fields.Integer(required=True)
    following = fields.Integer(required=True)
    ratio = fields.Float(required=True, allow_none=True,
                         metadata={"description": "followers / following; null when following is 0"})


class FollowSettingSchema(Schema):
    class Meta:
        unknown = RAISE

    followers = fields.String(required=True, validate=validate.OneOf(CHOICES),
                              metadata={"description": "Who may follow: everyone, or connections only."})
