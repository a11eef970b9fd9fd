"""HTTP schemas of the connections service."""
from marshmallow import RAISE, Schema, fields, validate

from services.connections.network import VISIBILITIES
from shared.auth import MEMBER_ID, MEMBER_ID_RULE
from shared.pages import PageArgs, page_schema

MESSAGE_MAX = 300


class InvitationArgs(Schema):
    class Meta:
        unknown = RAISE

    invitee = fields.String(required=True,
                            validate=validate.Regexp(MEMBER_ID, error=f"Not a member id: {MEMBER_ID_RULE}."))
    message = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=MESSAGE_MAX))


class InvitationListArgs(PageArgs):
    direction = fields.String(load_default="received", validate=validate.OneOf(["received", "sent"]))


class InvitationSchema(Schema):
    id = fields.String(required=True)
    inviter = fields.String(required=True)
    invitee = fields.String(required=True)
    message = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, validate=validate.OneOf(["pending", "accepted", "ignored", "withdrawn"]))
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    decided_at = fields.String(allow_none=True, required=True, metadata={"format": "date-time"})


InvitationPageSchema = page_schema(InvitationSchema)


class ConnectionSchema(Schema):
    member = fields.String(required=True)
    connected_at = fields.String(required=True, metadata={"format": "date-time"})


ConnectionPageSchema = page_schema(ConnectionSchema)
MutualPageSchema = page_schema(ConnectionSchema, name="MutualConnectionPageSchema",
                               total=fields.Integer(required=True))


class CountSchema(Schema):
    count = fields.Integer(required=True)


class RelationshipInvitationSchema(Schema):
    id = fields.String(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(["sent", "received"]))


class RelationshipSchema(Schema):
    member = fields.String(required=True)
    degree = fields.Integer(allow_none=True, required=True, validate=validate.OneOf([1, 2, 3]))
    connected = fields.Boolean(required=True)
    invitation = fields.Nested(RelationshipInvitationSchema, allow_none=True, required=True)
    mutual_connections = fields.Integer(required=True)
    can_message = fields.Boolean(required=True)
    profile_access = fields.String(required=True, validate=validate.OneOf(["full", "limited"]))


class SettingsSchema(Schema):
    connections_visibility = fields.String(required=True, validate=validate.OneOf(VISIBILITIES))


class SettingsPatchSchema(Schema):
    class Meta:
        unknown = RAISE

    connections_visibility = fields.String(validate=validate.OneOf(VISIBILITIES))
