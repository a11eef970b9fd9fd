"""HTTP endpoints of the feed service: views translate HTTP, rules live in ``posts`` and ``timelines``."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from services.feed import posts
from services.feed.schemas import CommentArgs, CommentPageSchema, CommentSchema, PostArgs, PostPageSchema, PostSchema
from services.feed.timelines import Timelines, read_feed
from shared.bus.outbox import Outbox
from shared.http import caller, service_settings, service_store
from shared.http.conventions import conditional, location, next_page
from shared.http.idempotency import idempotent
from shared.http.openapi import operation
from shared.pages import PageArgs

blp = Blueprint("feed", __name__, url_prefix="/v1", description="Posts, likes, comments and the home feed.")


def _outbox() -> Outbox:
    return Outbox("feed", service_settings())


def _timelines() -> Timelines:
    return current_app.extensions["feed.timelines"]


@blp.route("/posts")
class Posts(MethodView):
    @operation("createPost", idempotent=True)
    @blp.arguments(PostArgs)
    @blp.response(201, PostSchema)
    def post(self, args):
        """Publish a post (or reshare a public one). Honours ``Idempotency-Key``."""
        def create():
            post = posts.publish(service_store(), _outbox(), caller(), args.get("text", ""),
                                 args["visibility"], args.get("reshare_of"))
            _timelines().show_own_post(post)
            return post.body(), 201

        def replay(events):
            # The post was stored but its request died before answering: answer from the store.
            created = next(e["data"] for e in events if e["type"] == "post.created")
            post = posts.get(service_store(), caller(), created["post_id"])
            _timelines().show_own_post(post)
            return post.body(), 201

        body, status = idempotent(service_store(), "feed.posts", caller(), create, replay)
        return body, status, location("feed.PostById", post_id=body["id"])


@blp.route("/posts/<post_id>")
class PostById(MethodView):
    @conditional
    @operation("getPost", 404)
    @blp.response(200, PostSchema)
    def get(self, post_id):
        """One post: 404 when it is deleted or the caller may not see it."""
        return posts.get(service_store(), caller(), post_id).body()

    @operation("deletePost", 403, 404)
    @blp.response(204)
    def delete(self, post_id):
        """The author deletes their post; 403 for others who can see it."""
        posts.delete(service_store(), _outbox(), caller(), post_id)


@blp.route("/posts/<post_id>/like")
class PostLike(MethodView):
    @operation("likePost", 404)
    @blp.response(204)
    def put(self, post_id):
        """Like a post (idempotent)."""
        posts.set_like(service_store(), _outbox(), caller(), post_id, like=True)

    @operation("unlikePost", 404)
    @blp.response(204)
    def delete(self, post_id):
        """Unlike a post (idempotent)."""
        posts.set_like(service_store(), _outbox(), caller(), post_id, like=False)


@blp.route("/posts/<post_id>/comments")
class PostComments(MethodView):
    @operation("addComment", 404, idempotent=True)
    @blp.arguments(CommentArgs)
    @blp.response(201, CommentSchema)
    def post(self, args, post_id):
        """Comment on a post the caller may see. Honours ``Idempotency-Key``."""
        def create():
            return posts.add_comment(service_store(), _outbox(), caller(), post_id, args["text"]).body(), 201

        def replay(events):
            added = next(e["data"] for e in events if e["type"] == "comment.added")
            return posts.comment(service_store(), post_id, added["comment_id"]), 201

        body, status = idempotent(service_store(), f"feed.comments.{post_id}", caller(), create, replay)
        # A comment has no URL of its own: it is found in its post's comments.
        return body, status, location("feed.PostComments", post_id=post_id)

    @operation("listComments", 404)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, CommentPageSchema)
    def get(self, args, post_id):
        """The post's comments, newest first."""
        items, next_cursor = posts.comments_page(service_store(), caller(), post_id, args["limit"], args["cursor"])
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/members/<member_id>/posts")
class MemberPosts(MethodView):
    @operation("listMemberPosts")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, PostPageSchema)
    def get(self, args, member_id):
        """A member's posts that the caller may see, newest first."""
        items, next_cursor = posts.member_posts(service_store(), caller(), member_id, args["limit"], args["cursor"])
        return {"items": [p.body() for p in items], "next_cursor": next_cursor}


@blp.route("/feed")
class Feed(MethodView):
    # The hottest path. A schema instance, not the class: webargs would build one per request.
    @operation("getFeed")
    @blp.arguments(PageArgs(), location="query")
    @blp.response(200, PostPageSchema)
    def get(self, args):
        """The caller's home feed, newest first."""
        items, next_cursor = read_feed(service_store(), _timelines(), caller(), args["limit"], args["cursor"])
        # The body is built to PostPageSchema's shape from each post's cached JSON, so it skips a
        # marshmallow pass and a JSON encoding of every text (flask-smorest passes a Response
        # through; the schema still documents it).
        next_page(next_cursor)
        return current_app.response_class(posts.page_json(items, next_cursor), mimetype="application/json")
