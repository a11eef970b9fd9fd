"""HTTP endpoints of the connections service: views translate HTTP, rules live in
``invitations``, ``network``, ``suggestions``, ``introductions``, ``endorsements`` and ``blocks``."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.connections import blocks, endorsements, introductions, invitations, network, suggestions
from services.connections.invitations import Invitation
from services.connections.schemas import (ConnectionPageSchema, CountSchema, InvitationArgs, InvitationListArgs,
                                          InvitationPageSchema, InvitationSchema, MutualPageSchema,
                                          RelationshipSchema, SettingsPatchSchema, SettingsSchema)
from services.connections.schemas import (BlockPageSchema, EndorsedSkillPageSchema, EndorsementArgs,
                                          EndorsementSchema, IntroductionArgs, IntroductionSchema,
                                          SuggestionPageSchema)
from shared.bus.outbox import Outbox
from shared.clock import rfc3339
from shared.http import caller, service_settings, service_store
from shared.http.conventions import conditional, location
from shared.http.idempotency import idempotent
from shared.http.app import first_reads, joins_write_limits
from shared.http.members import directory, member_as_seen, require_member
from shared.http.openapi import operation
from shared.pages import PageArgs

blp = Blueprint("connections", __name__, url_prefix="/v1",
                description="Invitations, connections, degrees and mutual connections.")


def _outbox() -> Outbox:
    return Outbox("connections", service_settings())


def _invitation(inv: Invitation) -> dict:
    return {"id": inv.id, "inviter": inv.inviter, "invitee": inv.invitee, "message": inv.message,
            "status": inv.status, "created_at": rfc3339(inv.created_at_ms),
            "decided_at": rfc3339(inv.decided_at_ms) if inv.decided_at_ms else None,
            "introduced_by": inv.introduced_by}


def _connections(items: list[tuple[str, int]]) -> list[dict]:
    return [{"member": member, "connected_at": rfc3339(at)} for member, at in items]


@blp.route("/invitations")
class Invitations(MethodView):
    @joins_write_limits
    @operation("sendInvitation", 403, 404, 409, 429, idempotent=True)
    @blp.arguments(InvitationArgs)
    @blp.response(201, InvitationSchema)
    def post(self, args):
        """Invite a member. When they had already invited you, you are connected at once
        (201 with status ``accepted``). 404 ``member_not_found`` when the invitee has no profile.
        Honours ``Idempotency-Key``."""
        store, member, invitee = service_store(), caller(), args["invitee"]

        def reads(pipe) -> None:
            pipe.hgetall(directory().key(invitee))
            invitations.queue_pair_state(pipe, member, invitee)
        # The write's limit hit, the caller's entry, the invitee's and the pair's state: one round trip.
        entry, *pair_state = first_reads(reads)
        require_member(invitee, "invitee", entry=entry)

        def create():
            inv = invitations.send(store, _outbox(), service_settings(), member, invitee, args["message"],
                                   pair_state=pair_state)
            return _invitation(inv), 201

        body, status = idempotent(store, "invitations", member, create)
        return body, status, location("connections.InvitationById", invitation_id=body["id"])

    @operation("listInvitations")
    @blp.arguments(InvitationListArgs, location="query")
    @blp.response(200, InvitationPageSchema)
    def get(self, args):
        """The caller's pending invitations, received (default) or sent, newest first."""
        items, next_cursor = invitations.page(service_store(), caller(), args["direction"], args["limit"],
                                              args["cursor"])
        return {"items": [_invitation(inv) for inv in items], "next_cursor": next_cursor}


@blp.route("/invitations/<invitation_id>")
class InvitationById(MethodView):
    @conditional
    @operation("getInvitation", 404)
    @blp.response(200, InvitationSchema)
    def get(self, invitation_id):
        """One invitation, for its inviter and invitee only (an ignored one looks pending to the inviter)."""
        return _invitation(invitations.get(service_store(), caller(), invitation_id))


@blp.route("/invitations/<invitation_id>/accept", methods=["POST"])
class InvitationAccept(MethodView):
    @operation("acceptInvitation", 403, 404, 409)
    @blp.response(200, InvitationSchema)
    def post(self, invitation_id):
        """The invitee accepts: the two members are connected."""
        return _invitation(invitations.accept(service_store(), _outbox(), service_settings(), caller(),
                                              invitation_id))


@blp.route("/invitations/<invitation_id>/ignore", methods=["POST"])
class InvitationIgnore(MethodView):
    @operation("ignoreInvitation", 403, 404, 409)
    @blp.response(200, InvitationSchema)
    def post(self, invitation_id):
        """The invitee ignores, silently: the inviter still sees it pending."""
        return _invitation(invitations.ignore(service_store(), _outbox(), service_settings(), caller(),
                                              invitation_id))


@blp.route("/invitations/<invitation_id>/withdraw", methods=["POST"])
class InvitationWithdraw(MethodView):
    @operation("withdrawInvitation", 403, 404, 409)
    @blp.response(200, InvitationSchema)
    def post(self, invitation_id):
        """The inviter withdraws; the same member cannot be invited again during the cool-down."""
        return _invitation(invitations.withdraw(service_store(), _outbox(), service_settings(), caller(),
                                                invitation_id))


@blp.route("/members/<member_id>/connections")
class MemberConnections(MethodView):
    @operation("listConnections", 403)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ConnectionPageSchema)
    def get(self, args, member_id):
        """A member's connections, newest first, as their connections_visibility setting allows."""
        items, next_cursor = network.connections_page(service_store(), caller(), member_id, args["limit"],
                                                      args["cursor"])
        return {"items": _connections(items), "next_cursor": next_cursor}


@blp.route("/members/<member_id>/connections/count")
class MemberConnectionCount(MethodView):
    @conditional
    @operation("countConnections")
    @blp.response(200, CountSchema)
    def get(self, member_id):
        """How many connections a member has: public."""
        return {"count": network.count(service_store(), member_id)}


@blp.route("/connections/<member>")
class Connection(MethodView):
    @operation("removeConnection", 404)
    @blp.response(204)
    def delete(self, member):
        """Remove a connection (either side may); the other member is not notified."""
        network.remove(service_store(), _outbox(), caller(), member)


@blp.route("/members/<member_id>/mutual-connections")
class MutualConnections(MethodView):
    @operation("listMutualConnections")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, MutualPageSchema)
    def get(self, args, member_id):
        """The connections the caller and the member share, with their ``total``."""
        items, next_cursor, total = network.mutual_connections(service_store(), caller(), member_id,
                                                               args["limit"], args["cursor"])
        return {"items": _connections(items), "next_cursor": next_cursor, "total": total}


@blp.route("/relationships/<member>")
class RelationshipView(MethodView):
    @conditional
    @operation("getRelationship")
    @blp.response(200, RelationshipSchema)
    def get(self, member):
        """The caller's relationship to a member: degree, pending invitation, mutual connections, and
        ``profile_access``, the view a read of their profile serves the caller (full, limited,
        minimal, or none: blocked either way, never registered, or closed)."""
        store, viewer = service_store(), caller()
        rel = network.relationship(store, viewer, member)
        access = network.profile_access(rel.connected, blocks.is_blocked_either_way(store, viewer, member),
                                        *member_as_seen(member))
        return {"member": rel.member, "degree": rel.degree, "connected": rel.connected,
                "invitation": rel.invitation, "mutual_connections": rel.mutual_connections,
                "can_message": rel.can_message, "profile_access": access}


@blp.route("/settings")
class ConnectionSettings(MethodView):
    @conditional
    @operation("getConnectionSettings")
    @blp.response(200, SettingsSchema)
    def get(self):
        """The caller's connection settings."""
        return {"connections_visibility": network.visibility(service_store(), caller())}

    @operation("updateConnectionSettings")
    @blp.arguments(SettingsPatchSchema)
    @blp.response(200, SettingsSchema)
    def patch(self, args):
        """Change who may see the caller's list of connections: everyone, connections or only_me."""
        store, member = service_store(), caller()
        if "connections_visibility" in args:
            network.set_visibility(store, member, args["connections_visibility"])
        return {"connections_visibility": network.visibility(store, member)}


# --- growing the network -------------------------------------------------------------

@blp.route("/suggestions")
class Suggestions(MethodView):
    @operation("listSuggestions")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, SuggestionPageSchema)
    def get(self, args):
        """People you may know: 2nd-degree members, most mutual connections first (ties by member id).
        Never a connection, a member with an open invitation either way, or a blocked member."""
        items, next_cursor = suggestions.page(service_store(), caller(), args["limit"], args["cursor"])
        return {"items": [{"member": m, "mutual_connections": n} for m, n in items], "next_cursor": next_cursor}


def _introduction(intro: introductions.Introduction) -> dict:
    return {"id": intro.id, "requester": intro.requester, "target": intro.target, "via": intro.via,
            "note": intro.note, "status": intro.status, "created_at": rfc3339(intro.created_at_ms),
            "decided_at": rfc3339(intro.decided_at_ms) if intro.decided_at_ms else None,
            "invitation_id": intro.invitation_id}


@blp.route("/introductions")
class Introductions(MethodView):
    @operation("requestIntroduction", 403, 404, 409, idempotent=True)
    @blp.arguments(IntroductionArgs)
    @blp.response(201, IntroductionSchema)
    def post(self, args):
        """Ask ``via``, a mutual connection, to introduce you to ``target``. 422 when ``via`` is not
        connected to both; 409 when already connected, an invitation is open, or one is pending.
        404 ``member_not_found`` when ``target`` or ``via`` has no profile. Honours ``Idempotency-Key``."""
        store, member = service_store(), caller()
        require_member(args["target"], "target")
        require_member(args["via"], "via")

        def create():
            intro = introductions.request(store, _outbox(), member, args["target"], args["via"], args["note"])
            return _introduction(intro), 201

        body, status = idempotent(store, "introductions", member, create)
        return body, status, location("connections.IntroductionById", introduction_id=body["id"])


@blp.route("/introductions/<introduction_id>")
class IntroductionById(MethodView):
    @conditional
    @operation("getIntroduction", 404)
    @blp.response(200, IntroductionSchema)
    def get(self, introduction_id):
        """One introduction, for its requester and introducer (and its target once forwarded)."""
        return _introduction(introductions.get(service_store(), caller(), introduction_id))


@blp.route("/introductions/<introduction_id>/forward", methods=["POST"])
class IntroductionForward(MethodView):
    @operation("forwardIntroduction", 403, 404, 409)
    @blp.response(200, IntroductionSchema)
    def post(self, introduction_id):
        """The introducer forwards: the target receives the requester's invitation, naming the introducer.
        403 for the requester, 404 for anyone else; the invitation rules apply."""
        intro, _ = introductions.forward(service_store(), _outbox(), service_settings(), caller(), introduction_id)
        return _introduction(intro)


@blp.route("/introductions/<introduction_id>/decline", methods=["POST"])
class IntroductionDecline(MethodView):
    @operation("declineIntroduction", 403, 404, 409)
    @blp.response(200, IntroductionSchema)
    def post(self, introduction_id):
        """The introducer declines; the requester is told, the target never knows."""
        return _introduction(introductions.decline(service_store(), _outbox(), caller(), introduction_id))


@blp.route("/members/<member_id>/endorsements")
class Endorsements(MethodView):
    @operation("endorseMember", 403, 404)
    @blp.arguments(EndorsementArgs)
    @blp.response(201, EndorsementSchema)
    @blp.alt_response(200, schema=EndorsementSchema, description="Already endorsed for this skill (idempotent)")
    def post(self, args, member_id):
        """Endorse a 1st-degree connection for a skill: 201 new, 200 when you already had (once per
        skill). 403 ``not_connected`` for followers and strangers; 404 ``member_not_found``."""
        require_member(member_id, "member_id")
        found, created = endorsements.endorse(service_store(), _outbox(), caller(), member_id, args["skill"])
        body = {"endorser": found.endorser, "endorsee": found.endorsee, "skill": found.skill,
                "endorsed_at": rfc3339(found.endorsed_at_ms)}
        if not created:
            return body, 200
        # An endorsement has no URL of its own: it is found in the endorsee's list of skills.
        return body, 201, location("connections.Endorsements", member_id=member_id)

    @operation("listEndorsedSkills")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, EndorsedSkillPageSchema)
    def get(self, args, member_id):
        """A member's endorsed skills, most endorsed first, with counts and the latest endorsers."""
        items, next_cursor = endorsements.skills_page(service_store(), caller(), member_id, args["limit"],
                                                      args["cursor"])
        return {"items": [{"skill": s.skill, "count": s.count, "endorsers": s.endorsers,
                           "endorsed_by_me": s.endorsed_by_me} for s in items], "next_cursor": next_cursor}


@blp.route("/blocks/<member>")
class Block(MethodView):
    @operation("blockMember", 404)
    @blp.response(204)
    def put(self, member):
        """Block a member (idempotent): the connection and the invitations between you go, follows
        both ways go, each is hidden from the other's feed; they are told nothing. 404
        ``member_not_found`` when they have no profile."""
        require_member(member)
        blocks.block(service_store(), _outbox(), caller(), member)

    @operation("unblockMember")
    @blp.response(204)
    def delete(self, member):
        """Unblock (idempotent). Nothing the block removed comes back."""
        blocks.unblock(service_store(), _outbox(), caller(), member)


@blp.route("/blocks")
class Blocks(MethodView):
    @operation("listBlocks")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, BlockPageSchema)
    def get(self, args):
        """The members the caller has blocked, newest first."""
        items, next_cursor = blocks.page(service_store(), caller(), args["limit"], args["cursor"])
        return {"items": [{"member": m, "blocked_at": rfc3339(at)} for m, at in items], "next_cursor": next_cursor}
