"""HTTP endpoints of the follows service: views translate HTTP, rules live in ``following``
and ``follow_setting``."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.follows.follow_setting import change_follow_setting, follow_setting
from services.follows.following import (Follow, follow, follow_status, followee_state, followers_page,
                                        following_page, queue_followee_state, stats, unfollow)
from services.follows.schemas import (FollowArgs, FollowEdgePageSchema, FollowSchema, FollowSettingSchema,
                                      FollowStatsSchema)
from shared.bus.outbox import Outbox
from shared.clock import rfc3339
from shared.http import caller, service_settings, service_store
from shared.http.app import first_reads, joins_write_limits
from shared.http.conventions import conditional, location
from shared.http.members import directory, require_member
from shared.http.openapi import operation
from shared.pages import PageArgs

blp = Blueprint("following", __name__, url_prefix="/v1", description="Follow and unfollow members.")
members_blp = Blueprint("members", __name__, url_prefix="/v1",
                        description="A member's followers and following (private lists, public counts).")
settings_blp = Blueprint("settings", __name__, url_prefix="/v1", description="Who may follow the caller.")


def _outbox() -> Outbox:
    return Outbox("follows", service_settings())


def _body(f: Follow) -> dict:
    return {"follower": f.follower, "followee": f.followee, "following": f.following,
            "notify_on_post": f.notify_on_post, "since": rfc3339(f.since_ms) if f.following else None}


def _page(items, next_cursor) -> dict:
    return {"items": [{"member": m, "since": rfc3339(score)} for m, score in items], "next_cursor": next_cursor}


@blp.route("/following/<member>")
class Following(MethodView):
    @conditional
    @operation("getFollow")
    @blp.response(200, FollowSchema)
    def get(self, member):
        """Does the caller follow ``member``: ``following``, ``notify_on_post``, ``since`` (null if not)."""
        return _body(follow_status(service_store(), caller(), member))

    @joins_write_limits
    @operation("followMember", 403, 404)
    @blp.arguments(FollowArgs, location="json", required=False)
    @blp.response(201, FollowSchema)
    @blp.alt_response(200, schema=FollowSchema, description="Already following (post alerts may have changed)")
    def put(self, args, member):
        """Follow a member (idempotent): 201 when new, 200 when already following.

        403 ``followers_restricted`` when they accept followers from connections only;
        403 ``follow_refused`` when a block stands between the two; 422 for oneself; 404
        ``member_not_found`` when they have no profile.
        """
        # The write's limit hit, the caller's entry and the followee's state: one round trip.
        entry, restricted = followee_state(first_reads(
            lambda pipe: queue_followee_state(pipe, directory().key(member), member)))
        require_member(member, entry=entry)
        result, created = follow(service_store(), _outbox(), caller(), member,
                                 notify_on_post=args.get("notify_on_post"), restricted=restricted)
        if not created:
            return _body(result), 200
        return _body(result), 201, location("following.Following", member=member)

    @operation("unfollowMember")
    @blp.response(204)
    def delete(self, member):
        """Unfollow (idempotent): 204 whether or not the caller followed them."""
        unfollow(service_store(), _outbox(), caller(), member)


@members_blp.route("/members/<member_id>/followers")
class Followers(MethodView):
    @operation("listFollowers", 403)
    @members_blp.arguments(PageArgs, location="query")
    @members_blp.response(200, FollowEdgePageSchema)
    def get(self, args, member_id):
        """Who follows the member, newest first. 403 unless the caller is them or a connection."""
        return _page(*followers_page(service_store(), caller(), member_id, args["limit"], args["cursor"]))


@members_blp.route("/members/<member_id>/following")
class FollowingList(MethodView):
    @operation("listFollowing", 403)
    @members_blp.arguments(PageArgs, location="query")
    @members_blp.response(200, FollowEdgePageSchema)
    def get(self, args, member_id):
        """Whom the member follows, newest first. 403 unless the caller is them or a connection."""
        return _page(*following_page(service_store(), caller(), member_id, args["limit"], args["cursor"]))


@members_blp.route("/members/<member_id>/follow-stats")
class FollowStats(MethodView):
    @conditional
    @operation("getFollowStats")
    @members_blp.response(200, FollowStatsSchema)
    def get(self, member_id):
        """Follower and following counts (public) and their ratio (null when following is 0)."""
        counts = stats(service_store(), member_id)
        return {"followers": counts.followers, "following": counts.following, "ratio": counts.ratio}


@settings_blp.route("/settings")
class Settings(MethodView):
    @conditional
    @operation("getFollowSettings")
    @settings_blp.response(200, FollowSettingSchema)
    def get(self):
        """The caller's follow setting."""
        return {"followers": follow_setting(service_store(), caller())}

    @operation("updateFollowSettings")
    @settings_blp.arguments(FollowSettingSchema)
    @settings_blp.response(200, FollowSettingSchema)
    def patch(self, args):
        """Change who may follow the caller; existing followers stay."""
        return {"followers": change_follow_setting(service_store(), _outbox(), caller(), args["followers"])}
