"""Every event type Rapport publishes, with the schema of its ``data``.

This module is the single source of the event contract: producers build events through
it, consumers load them through it, and ``rapport schemas`` exports it to JSON Schema.
Times are RFC 3339 UTC strings; ids are strings of a known format; every string is bounded,
so an event that passes its schema can be stored and shown as it is. An event that fails it is
poison (the consumer runner sends it to the DLQ).

``version`` orders the changes of one aggregate (a member pair, a follow edge): the owning
store numbers each change in the same script as the change and its outbox entry, so a replica
applies a change only when its version is newer than the one it holds (docs/events.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.auth import MEMBER_ID
from shared.clock import is_rfc3339


class EventData(Schema):
    class Meta:
        # A consumer ignores fields it does not know: adding an optional field is not breaking.
        unknown = EXCLUDE
        ordered = True


def Member(**kw):  # noqa: N802 - reads as a field type
    return fields.String(required=True, validate=validate.Regexp(MEMBER_ID), **kw)


def Time(**kw):  # noqa: N802
    # ``format`` goes into the exported JSON Schema (a FormatChecker then checks it there too).
    return fields.String(required=True, validate=[validate.Length(max=40), check_rfc3339],
                         metadata={"format": "date-time", **kw.pop("metadata", {})}, **kw)


# Ids the services mint: invitations and introductions a uuid4 hex, posts ``<author>~<stamp>``,
# comments a stamp (base36 time and random hex).
HEX_ID = re.compile(r"^[0-9a-f]{32}$")
STAMP = re.compile(r"^[0-9a-z]{1,40}$")
POST_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}~[0-9a-z]{1,40}$")
TEXT_MAX = 300  # invitation messages, introduction notes: what the HTTP layer lets in
EXCERPT_MAX = 200
SKILL_MAX = 80
# A version fits a JSON number any consumer reads exactly (2^53 - 1).
VERSION_MAX = 2 ** 53 - 1


def Id(pattern: re.Pattern, **kw):  # noqa: N802
    return fields.String(validate=validate.Regexp(pattern), **{"required": True, **kw})


def PostId(**kw):  # noqa: N802
    return Id(POST_ID, **kw)


def Text(max_length: int, **kw):  # noqa: N802
    return fields.String(validate=validate.Length(max=max_length), **kw)


def Version(**kw):  # noqa: N802
    """The aggregate's version, assigned by its store with the change (required in new events)."""
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=VERSION_MAX), **kw)


def check_rfc3339(value: str) -> None:
    if not is_rfc3339(value):
        raise ValidationError("Not an RFC 3339 time.")


# --- connections.events -------------------------------------------------------------

class InvitationSent(EventData):
    invitation_id = Id(HEX_ID)
    inviter = Member()
    invitee = Member()
    message = Text(TEXT_MAX, load_default=None, allow_none=True)
    sent_at = Time()
    introduced_by = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(MEMBER_ID))


class InvitationDecided(EventData):
    """ignored / withdrawn: the same facts, a different outcome."""
    invitation_id = Id(HEX_ID)
    inviter = Member()
    invitee = Member()
    at = Time()


class InvitationAccepted(InvitationDecided):
    """The two members are connected; ``version`` orders it among the pair's changes."""
    version = Version()


class ConnectionRemoved(EventData):
    """``version`` orders it among the pair's changes (one sequence per member pair)."""
    remover = Member()
    other = Member()
    reason = fields.String(load_default="removed", validate=validate.OneOf(["removed", "blocked"]))
    at = Time()
    version = Version()


class IntroductionRequested(EventData):
    introduction_id = Id(HEX_ID)
    requester = Member()
    target = Member()
    via = Member()
    note = Text(TEXT_MAX, load_default=None, allow_none=True)
    at = Time()


class IntroductionDecided(EventData):
    introduction_id = Id(HEX_ID)
    requester = Member()
    target = Member()
    via = Member()
    invitation_id = Id(HEX_ID, required=False, load_default=None, allow_none=True)
    at = Time()


class EndorsementAdded(EventData):
    endorser = Member()
    endorsee = Member()
    skill = fields.String(required=True, validate=validate.Length(min=1, max=SKILL_MAX))
    at = Time()


class BlockChanged(EventData):
    """``version`` orders it among the pair's changes: a block and a connection of the same
    pair share one sequence."""
    blocker = Member()
    blocked = Member()
    at = Time()
    version = Version()


# --- follows.events -----------------------------------------------------------------

FOLLOW_REASONS = ["explicit", "connection"]
UNFOLLOW_REASONS = ["explicit", "connection_removed", "blocked"]


class FollowCreated(EventData):
    follower = Member()
    followee = Member()
    reason = fields.String(required=True, validate=validate.OneOf(FOLLOW_REASONS))
    notify_on_post = fields.Boolean(load_default=False)
    since = Time()
    version = Version()  # of the follow edge follower → followee


class FollowRemoved(EventData):
    follower = Member()
    followee = Member()
    reason = fields.String(required=True, validate=validate.OneOf(UNFOLLOW_REASONS))
    at = Time()
    version = Version()


class FollowUpdated(EventData):
    follower = Member()
    followee = Member()
    notify_on_post = fields.Boolean(required=True)
    at = Time()
    version = Version()


class FollowSettingsUpdated(EventData):
    member = Member()
    followers = fields.String(required=True, validate=validate.OneOf(["everyone", "connections"]))
    at = Time()


# --- feed.events --------------------------------------------------------------------

# How many of an author's recent disconnections a connections-only post carries.
DISCONNECTED_MAX = 200


class PairVersion(EventData):
    member = Member()
    version = Version()


class PostCreated(EventData):
    """``disconnected`` (connections-only posts): the members whose connection with the author
    the feed knew had ended when the post was stored, each with that pair's version, so a
    consumer whose own replica is behind does not show the post to them (docs/architecture.md)."""
    post_id = PostId()
    author = Member()
    visibility = fields.String(required=True, validate=validate.OneOf(["public", "connections"]))
    created_at = Time()
    reshare_of = PostId(required=False, load_default=None, allow_none=True)
    reshare_of_author = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(MEMBER_ID))
    excerpt = Text(EXCERPT_MAX, load_default="")
    disconnected = fields.List(fields.Nested(PairVersion), load_default=list,
                               validate=validate.Length(max=DISCONNECTED_MAX))


class PostDeleted(EventData):
    post_id = PostId()
    author = Member()
    at = Time()


class PostLiked(EventData):
    """A like or an unlike: ``actor`` likes the post ``post_id`` of ``author``."""
    post_id = PostId()
    author = Member()
    actor = Member()
    at = Time()


class CommentChanged(EventData):
    comment_id = Id(STAMP)
    post_id = PostId()
    author = Member()  # the post's author
    commenter = Member()
    excerpt = Text(EXCERPT_MAX, load_default="")
    at = Time()


# --- profiles.events ----------------------------------------------------------------

NAME_MAX = 100
HEADLINE_MAX = 220
RECOMMENDATION_MAX = 3000


class MemberRegistered(EventData):
    """A member exists from their first profile; ``version`` orders the member's changes
    (registered, updated, settings changed, closed: one sequence per member)."""
    member = Member()
    name = fields.String(required=True, validate=validate.Length(min=1, max=NAME_MAX))
    headline = Text(HEADLINE_MAX, load_default="")
    at = Time()
    version = Version()


class MemberSettingsChanged(EventData):
    member = Member()
    profile_visibility = fields.String(required=True, validate=validate.OneOf(["everyone", "connections"]))
    at = Time()
    version = Version()


class MemberClosed(EventData):
    """The account is closed: every service erases what it holds of the member."""
    member = Member()
    at = Time()
    version = Version()


class RecommendationChanged(EventData):
    """written (pending), accepted or hidden: ``author`` recommends ``recipient``."""
    recommendation_id = Id(HEX_ID)
    author = Member()
    recipient = Member()
    relationship = Text(200, load_default="")
    excerpt = Text(EXCERPT_MAX, load_default="")
    at = Time()


# --- messaging.events ---------------------------------------------------------------

PARTICIPANTS_MAX = 50  # a group: the sender and up to 49 others


class MessageSent(EventData):
    """A message was appended to a conversation (the first one starts it). ``version`` orders the
    conversation's changes (messages and read receipts: one sequence per conversation); ``seq``
    numbers its messages, 1, 2, 3..."""
    conversation_id = Id(HEX_ID)
    kind = fields.String(required=True, validate=validate.OneOf(["direct", "group"]))
    participants = fields.List(Member(), required=True,
                               validate=validate.Length(min=2, max=PARTICIPANTS_MAX))
    sender = Member()
    seq = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=VERSION_MAX))
    excerpt = Text(EXCERPT_MAX, load_default="")
    sent_at = Time()
    version = Version()


class ConversationRead(EventData):
    """A participant's read receipt moved forward to message ``up_to`` (a ``seq``)."""
    conversation_id = Id(HEX_ID)
    participants = fields.List(Member(), required=True,
                               validate=validate.Length(min=2, max=PARTICIPANTS_MAX))
    member = Member()
    up_to = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=VERSION_MAX))
    unread_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=VERSION_MAX))
    at = Time()
    version = Version()


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
    # A work topic's events: the number ``n`` of the event within its job; the relay sends it to
    # the topic's partition ``n`` mod their count, so a job's events spread evenly over the
    # partitions (and the workers) instead of as their keys hash. None: by the key.
    spread: Callable[[dict], int] | None = None

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
    _t("connections", "invitation.accepted", InvitationAccepted, _pair("inviter", "invitee")),
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
    _t("profiles", "member.registered", MemberRegistered, lambda d: d["member"]),
    _t("profiles", "member.updated", MemberRegistered, lambda d: d["member"]),
    _t("profiles", "member.settings_changed", MemberSettingsChanged, lambda d: d["member"]),
    _t("profiles", "member.closed", MemberClosed, lambda d: d["member"]),
    _t("profiles", "recommendation.written", RecommendationChanged, lambda d: d["recipient"],
       lambda d: d["recommendation_id"]),
    _t("profiles", "recommendation.accepted", RecommendationChanged, lambda d: d["recipient"],
       lambda d: d["recommendation_id"]),
    _t("profiles", "recommendation.hidden", RecommendationChanged, lambda d: d["recipient"],
       lambda d: d["recommendation_id"]),
    _t("messaging", "message.sent", MessageSent, lambda d: d["conversation_id"]),
    _t("messaging", "conversation.read", ConversationRead, lambda d: d["conversation_id"]),
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
