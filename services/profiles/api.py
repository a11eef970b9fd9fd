"""HTTP endpoints of the profiles service: views translate HTTP, rules live in ``profiles``,
``search`` and ``recommendations``."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.profiles import profiles, recommendations, search
from services.profiles.recommendations import Recommendation
from services.profiles.schemas import (FoundMemberPageSchema, ProfileArgsSchema, ProfilePatchSchema,
                                       ProfileSchema,
                                       RecommendationArgs, RecommendationListArgs, RecommendationPageSchema,
                                       RecommendationSchema, SearchArgs, VisibilitySchema)
from services.profiles.store import Keys
from shared.bus.outbox import Outbox
from shared.clock import rfc3339
from shared.http import caller, service_settings, service_store
from shared.http.conventions import conditional, location
from shared.http.idempotency import idempotent
from shared.http.openapi import operation

profile_blp = Blueprint("profile", __name__, url_prefix="/v1",
                        description="The caller's own profile: register, change, read, close.")
members_blp = Blueprint("members", __name__, url_prefix="/v1",
                        description="Other members: their profiles as the caller may see them, and search by name.")
recommendations_blp = Blueprint("recommendations", __name__, url_prefix="/v1",
                                description="Recommendations written by 1st-degree connections.")
settings_blp = Blueprint("settings", __name__, url_prefix="/v1", description="Who sees more of the caller's profile.")


def _outbox() -> Outbox:
    return Outbox("profiles", service_settings())


def _keys() -> Keys:
    return Keys(service_settings().shards)


def _recommendation(r: Recommendation) -> dict:
    return {"id": r.id, "author": r.author, "recipient": r.recipient, "relationship": r.relationship,
            "text": r.text, "status": r.status, "written_at": rfc3339(r.written_ms),
            "decided_at": rfc3339(r.decided_ms) if r.decided_ms else None}


@profile_blp.route("/profile")
class Profile(MethodView):
    @conditional
    @operation("getOwnProfile", 404)
    @profile_blp.response(200, ProfileSchema)
    def get(self):
        """The caller's own profile, whole, settings included (``access`` self). 404
        ``member_not_found`` before registering and after closing."""
        return profiles.own_profile(service_store(), _keys(), caller())

    @operation("putProfile", 403)
    @profile_blp.arguments(ProfileArgsSchema)
    @profile_blp.response(201, ProfileSchema)
    @profile_blp.alt_response(200, schema=ProfileSchema, description="Replaced")
    def put(self, args):
        """Register with a first profile (201, ``member.registered``) or replace it whole (200,
        ``member.updated``); fields left out are emptied. Idempotent. 403 ``account_closed``: a
        closed account's id cannot register again."""
        store, keys, member = service_store(), _keys(), caller()
        created = profiles.put_profile(store, keys, _outbox(), member, args)
        body = profiles.own_profile(store, keys, member)
        if created:
            return body, 201, location("profile.Profile")
        return body, 200

    @operation("patchProfile", 403)
    @profile_blp.arguments(ProfilePatchSchema)
    @profile_blp.response(200, ProfileSchema)
    def patch(self, args):
        """Change the given fields (a list or ``contact`` is replaced whole). 403 ``profile_required``
        before registering."""
        store, keys, member = service_store(), _keys(), caller()
        profiles.patch_profile(store, keys, _outbox(), member, args)
        return profiles.own_profile(store, keys, member)

    @operation("closeAccount", 403)
    @profile_blp.response(204)
    def delete(self):
        """Close the caller's account (idempotent): 204 and ``member.closed``; every service erases
        what it holds of them, and the id answers 404 from then on and cannot register again."""
        profiles.close(service_store(), _keys(), _outbox(), caller())


@members_blp.route("/members/<member_id>/profile")
class MemberProfile(MethodView):
    @conditional
    @operation("getMemberProfile", 404)
    @members_blp.response(200, ProfileSchema)
    def get(self, member_id):
        """What the caller may see of the member's profile, ``access`` naming the view: self, full
        (a 1st-degree connection), limited (anyone else while the member's profile_visibility is
        everyone), minimal (name and headline, while it is connections). 404
        ``member_not_found`` for a member blocked either way, an id nobody registered, a closed
        account: also the cheap way for another service to learn that a member exists."""
        return profiles.view(service_store(), _keys(), caller(), member_id)


@members_blp.route("/members")
class Members(MethodView):
    @operation("searchMembers")
    @members_blp.arguments(SearchArgs, location="query")
    @members_blp.response(200, FoundMemberPageSchema)
    def get(self, args):
        """Type-ahead over names: every word of ``q`` is a prefix of a word of the name, in any case
        and with or without accents; the caller's connections first, then the others, each in
        name order; never the caller, a member blocked either way, a closed account. Up to 20 a
        page; a page may hold fewer when most candidates are filtered out, and ``next_cursor``
        says whether more may follow."""
        found, next_cursor = search.search(service_store(), _keys(), caller(), args["q"], args["limit"],
                                           args["cursor"])
        return {"items": [{"member": f.member, "name": f.name, "headline": f.headline, "connection": f.connection}
                          for f in found], "next_cursor": next_cursor}


@members_blp.route("/members/<member_id>/recommendations")
class MemberRecommendations(MethodView):
    @operation("writeRecommendation", 403, 404, idempotent=True)
    @members_blp.arguments(RecommendationArgs)
    @members_blp.response(201, RecommendationSchema)
    def post(self, args, member_id):
        """Recommend a 1st-degree connection: 201, pending until they accept or hide it. 403
        ``not_connected`` for anyone else, ``profile_required`` before registering; 404
        ``member_not_found``."""
        store, member = service_store(), caller()

        def create():
            written = recommendations.write(store, _keys(), _outbox(), member, member_id, args["relationship"],
                                            args["text"])
            return _recommendation(written), 201

        body, status = idempotent(store, "profiles-recommendations", member, create)
        return body, status, location("recommendations.Recommendations", direction="given")


@recommendations_blp.route("/recommendations")
class Recommendations(MethodView):
    @operation("listRecommendations")
    @recommendations_blp.arguments(RecommendationListArgs, location="query")
    @recommendations_blp.response(200, RecommendationPageSchema)
    def get(self, args):
        """The caller's recommendations, newest first: ``received`` (default; every status) or
        ``given`` (may lag a write by milliseconds: the worker keeps it)."""
        items, next_cursor = recommendations.page(service_store(), _keys(), caller(), args["direction"],
                                                  args["limit"], args["cursor"])
        return {"items": [_recommendation(r) for r in items], "next_cursor": next_cursor}


def _decide(recommendation_id: str, status: str) -> dict:
    return _recommendation(recommendations.decide(service_store(), _keys(), _outbox(), caller(), recommendation_id,
                                                  status))


@recommendations_blp.route("/recommendations/<recommendation_id>/accept")
class AcceptRecommendation(MethodView):
    @operation("acceptRecommendation", 403, 404)
    @recommendations_blp.response(200, RecommendationSchema)
    def post(self, recommendation_id):
        """The recipient accepts it (idempotent): it shows in their full view. 403 ``not_recipient``
        for its author; 404 ``recommendation_not_found`` for anyone else."""
        return _decide(recommendation_id, "accepted")


@recommendations_blp.route("/recommendations/<recommendation_id>/hide")
class HideRecommendation(MethodView):
    @operation("hideRecommendation", 403, 404)
    @recommendations_blp.response(200, RecommendationSchema)
    def post(self, recommendation_id):
        """The recipient hides it (idempotent; an accepted one too). 403 ``not_recipient`` for its
        author; 404 ``recommendation_not_found`` for anyone else."""
        return _decide(recommendation_id, "hidden")


@settings_blp.route("/settings")
class Settings(MethodView):
    @conditional
    @operation("getProfileSettings", 404)
    @settings_blp.response(200, VisibilitySchema)
    def get(self):
        """The caller's profile_visibility."""
        return {"profile_visibility": profiles.visibility(service_store(), _keys(), caller())}

    @operation("updateProfileSettings", 403)
    @settings_blp.arguments(VisibilitySchema)
    @settings_blp.response(200, VisibilitySchema)
    def patch(self, args):
        """Change who sees more than name and headline (``member.settings_changed`` on a change).
        403 ``profile_required`` before registering."""
        return {"profile_visibility": profiles.set_visibility(service_store(), _keys(), _outbox(), caller(),
                                                              args["profile_visibility"])}
