"""HTTP schemas of the feed service."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.http.fields import Text
from shared.pages import page_schema

POST_TEXT_MAX = 3_000
COMMENT_TEXT_MAX = 1_250


class PostArgs(Schema):
    class Meta:
        unknown = RAISE

    text = Text(max_length=POST_TEXT_MAX)
    visibility = fields.String(load_default="public", validate=validate.OneOf(["public", "connections"]))
    reshare_of = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))

    @validates_schema
    def text_unless_reshare(self, data, **kwargs):
        # A reshare may come without words of its own; an original post may not.
        if "text" not in data and not data.get("reshare_of"):
            raise ValidationError("Missing data for required field.", field_name="text")


class PostSchema(Schema):
    id = fields.String(required=True)
    author = fields.String(required=True)
    text = fields.String(required=True)
    visibility = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    reshare_of = fields.String(allow_none=True, required=True)
    likes = fields.Integer(required=True)
    comments = fields.Integer(required=True)
    reshares = fields.Integer(required=True)
    liked_by_me = fields.Boolean(required=True)


class CommentArgs(Schema):
    class Meta:
        unknown = RAISE

    text = Text(max_length=COMMENT_TEXT_MAX, required=True)


class CommentSchema(Schema):
    id = fields.String(required=True)
    post_id = fields.String(required=True)
    author = fields.String(required=True)
    text = fields.String(required=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})


PostPageSchema = page_schema(PostSchema)
CommentPageSchema = page_schema(CommentSchema)
