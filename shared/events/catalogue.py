"""Every event type Rapport publishes, with the schema of its ``data``.

This module is the single source of the event contract: producers build events through
it, consumers load them through it, and ``rapport schemas`` exports it to JSON Schema.
Times are RFC 3339 UTC strings; ids are strings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.auth import MEMBER_ID


class EventData(Schema):
    class Meta:
        # A consumer ignores fields it does not know: adding an optional field is not breaking.
        unknown = EXCLUDE
        ordered = True


def Member(**kw):  # noqa: N802 - reads as a field type
    return fields.String(required=True, validate=validate.Regexp(MEMBER_ID), **kw)


def Time(**kw):  # noqa: N802
    return fields.String(required=True, validate=_rfc3339, **kw)


def _rfc3339(value: str) -> None:
    from datetime import datetime

    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("Not an RFC 3339 time.") from None


# --- connections.events -------------------------------------------------------------

class InvitationSent(EventData):
    invitation_id = fields.String(required=True)
    inviter = Member()
    invitee = Member()
    message = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    sent_at = Time()
    introduced_by = fields.String(load_default=None, allow_none=True)


class InvitationDecided(EventData):
    """accepted / ignored / withdrawn: the same facts, a different outcome."""
    invitation_id = fields.String(required=True)
    inviter = Member()
    invitee = Member()
    at = Time()


class ConnectionRemoved(EventData):
    remover = Member()
    other = Member()
    reason = fields.String(load_default="removed", validate=validate.OneOf(["removed", "blocked"]))
    at = Time()


class IntroductionRequested(EventData):
    introduction_id = fields.String(required=True)
    requester = Member()
    target = Member()
    via = Member()
    note = fields.String(load_default=None, allow_none=True)
    at = Time()


class IntroductionDecided(EventData):
    introduction_id = fields.String(required=True)
    requester = Member()
    target = Member()
    via = Member()
    invitation_id = fields.String(load_default=None, allow_none=True)
    at = Time()


class EndorsementAdded(EventData):
    endorser = Member()
    endorsee = Member()
    skill = fields.String(required=True, validate=validate.Length(min=1, max=80))
    at = Time()


class BlockChanged(EventData):
    blocker = Member()
    blocked = Member()
    at = Time()


# --- follows.events -----------------------------------------------------------------

FOLLOW_REASONS = ["explicit", "connection"]
UNFOLLOW_REASONS = ["explicit", "connection_removed", "blocked"]


class FollowCreated(EventData):
    follower = Member()
    followee = Member()
    reason = fields.String(required=True, validate=validate.OneOf(FOLLOW_REASONS))
    notify_on_post = fields.Boolean(load_default=False)
    since = Time()


class FollowRemoved(EventData):
    follower = Member()
    followee = Member()
    reason = fields.String(required=True, validate=validate.OneOf(UNFOLLOW_REASONS))
    at = Time()


class FollowUpdated(EventData):
    follower = Member()
    followee = Member()
    notify_on_post = fields.Boolean(required=True)
    at = Time()


class FollowSettingsUpdated(EventData):
    member = Member()
    followers = fields.String(required=True, validate=validate.OneOf(["everyone", "connections"]))
    at = Time()


# --- feed.events --------------------------------------------------------------------

class PostCreated(EventData):
    post_id = fields.String(required=True)
    author = Member()
    visibility = fields.String(required=True, validate=validate.OneOf(["public", "connections"]))
    created_at = Time()
    reshare_of = fields.String(load_default=None, allow_none=True)
    reshare_of_author = fields.String(load_default=None, allow_none=True)
    excerpt = fields.String(load_default="", validate=validate.Length(max=200))


class PostDeleted(EventData):
    post_id = fields.String(required=True)
    author = Member()
    at = Time()


class PostLiked(EventData):
    """A like or an unlike: ``actor`` likes the post ``post_id`` of ``author``."""
    post_id = fields.String(required=True)
    author = Member()
    actor = Member()
    at = Time()


class CommentChanged(EventData):
    comment_id = fields.String(required=True)
    post_id = fields.String(required=True)
    author = Member()  # the post's author
    commenter = Member()
    excerpt = fields.String(load_default="", validate=validate.Length(max=200))
    at = Time()


# --- the registry -------------------------------------------------------------------

def pair(a: str, b: str) -> str:
    """The Kafka key of a member pair: sorted, so both directions share a partition."""
    return "|".join(sorted((a, b)))


@dataclass(frozen=True)
class EventType:
    service: str  # the producing service
    name: str  # e.g. "follow.created"
    version: int
    data: type[EventData]
    key: Callable[[dict], str]  # Kafka key from the event's data
    subject: Callable[[dict], str]
    topic_name: str | None = None  # default: the service's ``<service>.events``

    @property
    def type(self) -> str:
        return f"rapport.{self.service}.{self.name}.v{self.version}"

    @property
    def topic(self) -> str:
        """The topic (before namespacing) this type is published to."""
        return self.topic_name or f"{self.service}.events"


def _t(service, name, data, key, subject=None, version=1) -> EventType:
    return EventType(service, name, version, data, key, subject or key)


_pair = lambda a, b: lambda d: pair(d[a], d[b])  # noqa: E731
_ordered = lambda a, b: lambda d: f"{d[a]}|{d[b]}"  # noqa: E731

CATALOGUE: tuple[EventType, ...] = (
    _t("connections", "invitation.sent", InvitationSent, _pair("inviter", "invitee")),
    _t("connections", "invitation.accepted", InvitationDecided, _pair("inviter", "invitee")),
    _t("connections", "invitation.ignored", InvitationDecided, _pair("inviter", "invitee")),
    _t("connections", "invitation.withdrawn", InvitationDecided, _pair("inviter", "invitee")),
    _t("connections", "connection.removed", ConnectionRemoved, _pair("remover", "other")),
    _t("connections", "introduction.requested", IntroductionRequested, _pair("requester", "target")),
    _t("connections", "introduction.forwarded", IntroductionDecided, _pair("requester", "target")),
    _t("connections", "introduction.declined", IntroductionDecided, _pair("requester", "target")),
    _t("connections", "endorsement.added", EndorsementAdded, _pair("endorser", "endorsee")),
    _t("connections", "block.added", BlockChanged, _pair("blocker", "blocked")),
    _t("connections", "block.removed", BlockChanged, _pair("blocker", "blocked")),
    _t("follows", "follow.created", FollowCreated, _ordered("follower", "followee")),
    _t("follows", "follow.removed", FollowRemoved, _ordered("follower", "followee")),
    _t("follows", "follow.updated", FollowUpdated, _ordered("follower", "followee")),
    _t("follows", "settings.updated", FollowSettingsUpdated, lambda d: d["member"]),
    _t("feed", "post.created", PostCreated, lambda d: d["author"], lambda d: d["post_id"]),
    _t("feed", "post.deleted", PostDeleted, lambda d: d["author"], lambda d: d["post_id"]),
    _t("feed", "post.liked", PostLiked, lambda d: d["author"], lambda d: d["post_id"]),
    _t("feed", "post.unliked", PostLiked, lambda d: d["author"], lambda d: d["post_id"]),
    _t("feed", "comment.added", CommentChanged, lambda d: d["author"], lambda d: d["post_id"]),
    _t("feed", "comment.deleted", CommentChanged, lambda d: d["author"], lambda d: d["post_id"]),
)

BY_TYPE: dict[str, EventType] = {t.type: t for t in CATALOGUE}
BY_NAME: dict[tuple[str, str], EventType] = {(t.service, t.name): t for t in CATALOGUE}


def register(event_type: EventType) -> EventType:
    """Add a service-internal type (e.g. the feed's fan-out batches) to the registry."""
    BY_TYPE[event_type.type] = event_type
    BY_NAME[(event_type.service, event_type.name)] = event_type
    return event_type


def lookup(service: str, name: str) -> EventType:
    try:
        return BY_NAME[(service, name)]
    except KeyError:
        raise KeyError(f"no event type {name!r} for service {service!r}") from None
