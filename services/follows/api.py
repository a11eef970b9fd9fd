"""HTTP endpoints of the follows service: views translate HTTP, rules live in ``following``."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from services.follows.following import Follow, follow
from services.follows.schemas import FollowArgs, FollowSchema
from shared.bus.outbox import Outbox
from shared.clock import rfc3339
from shared.http import caller, service_settings, service_store

blp = Blueprint("following", __name__, url_prefix="/v1", description="Follow and unfollow members.")


def _outbox() -> Outbox:
    return Outbox("follows", service_settings())


def _body(f: Follow) -> dict:
    return {"follower": f.follower, "followee": f.followee, "following": True,
            "notify_on_post": f.notify_on_post, "since": rfc3339(f.since_ms)}


@blp.route("/following/<member>")
class Following(MethodView):
    @blp.arguments(FollowArgs, location="json", required=False)
    @blp.response(201, FollowSchema)
    @blp.alt_response(200, schema=FollowSchema, description="Already following")
    def put(self, args, member):
        """Follow a member (idempotent): 201 when new, 200 when already following."""
        result, created = follow(service_store(), _outbox(), caller(), member,
                                 notify_on_post=args.get("notify_on_post", False))
        return _body(result), 201 if created else 200
