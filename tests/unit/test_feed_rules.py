"""Rules of the feed that need no I/O: post ids, key placement, request bodies, page JSON, batch member lists."""
from __future__ import annotations

import dataclasses
import json

import pytest
from marshmallow import ValidationError

from services.feed import store as keys
from services.feed.fanout import batches, member_ids
from services.feed.posts import Post, is_post_id, new_post_id, page_json
from services.feed.schemas import CommentArgs, PostArgs
from shared import slots
from shared.auth import MEMBER_ID
from shared.bus.outbox import Outbox
from shared.settings import load_settings


def test_a_post_id_names_its_author_and_is_never_a_member_id():
    post_id = new_post_id("ada.l-1", 1_764_151_200_000)
    assert is_post_id(post_id) and keys.author_of(post_id) == "ada.l-1"
    assert not is_post_id("ada.l-1") and not is_post_id("~abc") and not is_post_id("ada~ABC")


def test_a_posts_keys_and_its_authors_keys_share_the_authors_shard_and_slot():
    post_id = new_post_id("ada", 1)
    tagged = [keys.post(post_id), keys.likers(post_id), keys.comments(post_id), keys.comment_bodies(post_id),
              keys.resharers(post_id), keys.posts("ada"), keys.public_posts("ada"), keys.followers("ada"),
              keys.following("ada"), keys.connections("ada"), keys.hidden("ada"), keys.disconnections("ada"),
              keys.follow_version("ada", "bob"), keys.follower_version("ada", "bob"),
              keys.pair_version("ada", "bob"), keys.timeline("ada")]
    assert all(key.startswith(f"feed:{slots.tag('ada')}:") for key in tagged)
    slots.check_one_slot(tagged)
    assert keys.timeline("ada") == f"feed:{slots.tag('ada')}:timeline:ada"


def test_each_side_of_an_edge_or_a_pair_is_in_its_members_shard():
    assert keys.follower_version("bob", "ada").startswith(f"feed:{slots.tag('bob')}:")
    assert keys.pair_version("bob", "ada").startswith(f"feed:{slots.tag('bob')}:")
    assert keys.high_follower_authors(slots.tag("bob")) in keys.all_high_follower_authors()


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "x" * 3001}, {}, {"text": "hi", "visibility": "all"},
                                  {"text": "hi", "extra": 1}, {"text": " \n "}])
def test_a_post_body_is_refused(body):
    with pytest.raises(ValidationError):
        PostArgs().load(body)


def test_a_post_defaults_to_public_and_a_reshare_needs_no_text():
    assert PostArgs().load({"text": "hi"})["visibility"] == "public"
    assert "text" not in PostArgs().load({"reshare_of": "ada~abc"})


def test_a_comment_is_1_to_1250_characters():
    assert CommentArgs().load({"text": "x" * 1250})
    with pytest.raises(ValidationError):
        CommentArgs().load({"text": "x" * 1251})


def test_a_feed_page_is_the_json_of_its_posts_bodies_and_counters_stay_live():
    first = Post("ada~k1", "ada", 'über "quoted" \\ text', "public", 1_795_689_092_123, None, 1, 2, 0, True)
    reshare = Post("bob~k2", "bob", "", "public", 1_795_689_092_456, "ada~k1", 0, 0, 0, False)
    assert json.loads(page_json([first, reshare], "next")) == {"items": [first.body(), reshare.body()],
                                                               "next_cursor": "next"}
    liked_more = dataclasses.replace(first, likes=7, liked_by_me=False)  # the text part is cached, not the counts
    assert json.loads(page_json([liked_more], None)) == {"items": [liked_more.body()], "next_cursor": None}


def test_a_feed_script_with_the_one_stream_outbox_still_refuses_keys_of_two_post_slots():
    first = new_post_id("ada", 1)
    second = next(new_post_id(m, 1) for m in (f"m{i}" for i in range(200)) if keys.shard(m) != keys.shard("ada"))
    with pytest.raises(slots.CrossSlot):
        keys.run(keys.LIKE, None, keys={"post": keys.post(first), "likers": keys.likers(second),
                                        "outbox": "outbox:feed"}, member="grace", delta=1, event=[])


@pytest.mark.parametrize("members", [
    [], ["ada"], ["ada", "bob.l-1", "x" * 64], [f"fan{i}" for i in range(1000)],
    ["ada", ""], ["ada", "x" * 65], ["ada bob"], ["ada\x00bob"], ["ada\x00", "bob"], ["ada", "\x00"],
    ["ada", "bob\n"], ["adé"], ["ada", 7], ["ada", None], "ada", None, {"ada": 1},
])
def test_a_fan_out_batch_takes_exactly_the_member_lists_whose_every_element_is_a_member_id(members):
    one_by_one = isinstance(members, list) and all(isinstance(m, str) and MEMBER_ID.fullmatch(m) for m in members)
    assert member_ids(members) is bool(one_by_one)


def test_a_posts_batches_name_their_number_so_that_the_relay_sends_them_to_the_partitions_in_turn():
    post = {"post_id": new_post_id("ada", 1), "author": "ada", "created_at": "2026-12-01T00:00:00.000Z",
            "created_ms": 1}
    outbox = Outbox("feed", load_settings())
    entries = [outbox.fields(event) for event in batches(post, [f"fan{i}" for i in range(25)], 10, first=1)]
    assert [e["spread"] for e in entries] == ["1", "2", "3"]
    assert [json.loads(e["value"])["data"]["batch"] for e in entries] == [1, 2, 3]
