"""HTTP schemas of the connections service."""
from marshmallow import RAISE, Schema, fields, validate

from services.connections.network import VISIBILITIES
from shared.auth import MEMBER_ID, MEMBER_ID_RULE
from shared.http.fields import Text
from shared.pages import PageArgs, page_schema

MESSAGE_MAX = 300


class InvitationArgs(Schema):
    class Meta:
        unknown = RAISE

    invitee = fields.String(required=True,
                            validate=validate.Regexp(MEMBER_ID, error=f"Not a member id: {MEMBER_ID_RULE}."))
    message = Text(max_length=MESSAGE_MAX, allow_empty=True, load_default=None, allow_none=True)


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
    introduced_by = fields.String(allow_none=True, dump_default=None,
                                  metadata={"description": "The introducer, when it came from an introduction."})


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
    degree = fields.Integer(allow_none=True, required=True, validate=validate.OneOf([1, 2, 3]),
                            metadata={"component": "Degree",
                                      "description": "1: connected, 2: a connection's connection, 3: one step "
                                                     "further; null: no closer than that."})
    connected = fields.Boolean(required=True)
    invitation = fields.Nested(RelationshipInvitationSchema, allow_none=True, required=True)
    mutual_connections = fields.Integer(required=True)
    can_message = fields.Boolean(required=True)
    profile_access = fields.String(required=True, validate=validate.OneOf(["full", "limited", "minimal", "none"]),
                                   metadata={"description": "The view GET /v1/members/{id}/profile serves the "
                                                            "caller: full (a 1st-degree connection), limited "
                                                            "(profile_visibility everyone), minimal (connections "
                                                            "only), none (blocked either way, unknown, closed)"})


class SettingsSchema(Schema):
    connections_visibility = fields.String(required=True, validate=validate.OneOf(VISIBILITIES))


class SettingsPatchSchema(Schema):
    class Meta:
        unknown = RAISE

    connections_visibility = fields.String(validate=validate.OneOf(VISIBILITIES))


# --- growing the network: suggestions, introductions, endorsements, blocks ----------

def _member_field(**kw):
    return fields.String(validate=validate.Regexp(MEMBER_ID, error=f"Not a member id: {MEMBER_ID_RULE}."), **kw)


class SuggestionSchema(Schema):
    member = fields.String(required=True)
    mutual_connections = fields.Integer(required=True)


SuggestionPageSchema = page_schema(SuggestionSchema)


class IntroductionArgs(Schema):
    class Meta:
        unknown = RAISE

    target = _member_field(required=True)
    via = _member_field(required=True)
    note = Text(max_length=MESSAGE_MAX, allow_empty=True, load_default=None, allow_none=True)


class IntroductionSchema(Schema):
    id = fields.String(required=True)
    requester = fields.String(required=True)
    target = fields.String(required=True)
    via = fields.String(required=True)
    note = fields.String(allow_none=True, required=True)
    status = fields.String(required=True, validate=validate.OneOf(["pending", "forwarded", "declined"]))
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    decided_at = fields.String(allow_none=True, required=True, metadata={"format": "date-time"})
    invitation_id = fields.String(allow_none=True, required=True,
                                  metadata={"description": "The invitation it became, once forwarded."})


class EndorsementArgs(Schema):
    class Meta:
        unknown = RAISE

    # Its own rule (endorsements.normalise, the shared visible-text rule among them) answers
    # invalid_skill, for the API and the consumer alike.
    skill = fields.String(required=True, validate=validate.Length(min=1, max=80))


class EndorsementSchema(Schema):
    endorser = fields.String(required=True)
    endorsee = fields.String(required=True)
    skill = fields.String(required=True)
    endorsed_at = fields.String(required=True, metadata={"format": "date-time"})


class EndorsedSkillSchema(Schema):
    skill = fields.String(required=True)
    count = fields.Integer(required=True)
    endorsers = fields.List(fields.String(), required=True, metadata={"description": "The latest few."})
    endorsed_by_me = fields.Boolean(required=True)


EndorsedSkillPageSchema = page_schema(EndorsedSkillSchema)


class BlockSchema(Schema):
    member = fields.String(required=True)
    blocked_at = fields.String(required=True, metadata={"format": "date-time"})


BlockPageSchema = page_schema(BlockSchema)
