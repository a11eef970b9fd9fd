"""The home feed: who sees what, follow and unfollow, deletion, lost caches, paging.

Relationships reach the feed as events published here; the feed worker fans posts out.
"""
from __future__ import annotations

import uuid

import pytest

from services.feed import store as keys
from shared.events import new_event
from tests.support.infra import EventPublisher, eventually, next_version
from shared import store_client

T0 = "2026-01-01T00:00:00.000Z"
LATER = "2026-01-02T00:00:00.000Z"


@pytest.fixture(scope="module")
def feed(apps, workers):
    workers("feed")
    return apps("feed")


@pytest.fixture(scope="module")
def publish_events(settings):
    publisher = EventPublisher(settings)
    yield publisher
    publisher.close()


@pytest.fixture(scope="module")
def cache(settings):
    return store_client.connect(settings.cache_url)


def follows(a, b, reason="explicit", since=T0, version=None):
    return new_event("follows", "follow.created", {"follower": a, "followee": b, "reason": reason, "since": since,
                                                    "version": version or next_version()})


def unfollows(a, b, at=LATER, version=None):
    return new_event("follows", "follow.removed", {"follower": a, "followee": b, "reason": "explicit", "at": at,
                                                    "version": version or next_version()})


def connected(a, b):
    return [new_event("connections", "invitation.accepted", {"invitation_id": uuid.uuid4().hex, "inviter": a,
                                                             "invitee": b, "at": T0, "version": next_version()}),
            follows(a, b, "connection"), follows(b, a, "connection")]


def write(feed, auth, member, text="hello", visibility="public"):
    response = feed.post("/v1/posts", json={"text": text, "visibility": visibility}, headers=auth(member))
    assert response.status_code == 201, response.json
    return response.json["id"]


def feed_of(feed, auth, member, **query):
    response = feed.get("/v1/feed", query_string=query, headers=auth(member))
    assert response.status_code == 200, response.json
    return response.json


def ids(feed, auth, member):
    return [p["id"] for p in feed_of(feed, auth, member)["items"]]


def shows(feed, auth, member, post_id):
    return lambda: post_id in ids(feed, auth, member)


def test_a_member_sees_their_own_posts_at_once(feed, auth, unique):
    ada = unique("ada")
    first, second = write(feed, auth, ada, "one"), write(feed, auth, ada, "two")
    assert ids(feed, auth, ada) == [second, first]


def test_a_follower_sees_public_posts_but_never_a_connections_only_one(feed, auth, unique, publish_events):
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)  # grace reads her feed: she is active, so posts are fanned out to her
    old_public, old_private = write(feed, auth, ada, "old"), write(feed, auth, ada, "old, ours", "connections")

    publish_events(follows(grace, ada))
    eventually(shows(feed, auth, grace, old_public), message="backfill of the followee's public post")
    new_private, new_public = write(feed, auth, ada, "ours", "connections"), write(feed, auth, ada, "new")
    eventually(shows(feed, auth, grace, new_public), message="fan-out of the new public post")

    assert ids(feed, auth, grace) == [new_public, old_public]
    assert old_private not in ids(feed, auth, grace) and new_private not in ids(feed, auth, grace)


def test_a_connection_who_follows_sees_both_public_and_connections_only_posts(feed, auth, unique, publish_events):
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)
    old_private = write(feed, auth, ada, "before we connected", "connections")

    publish_events(*connected(ada, grace))
    eventually(shows(feed, auth, grace, old_private), message="backfill of connections-only post")
    public, private = write(feed, auth, ada, "hi all"), write(feed, auth, ada, "hi friends", "connections")
    eventually(shows(feed, auth, grace, private))

    assert ids(feed, auth, grace) == [private, public, old_private]
    assert ids(feed, auth, ada) == [private, public, old_private]


def test_unfollowing_a_connection_empties_their_posts_while_the_connection_stays(feed, auth, unique,
                                                                               publish_events):
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)
    publish_events(*connected(ada, grace))
    private = write(feed, auth, ada, "ours", "connections")
    eventually(shows(feed, auth, grace, private))
    own = write(feed, auth, grace, "mine")

    publish_events(unfollows(grace, ada))

    eventually(lambda: ids(feed, auth, grace) == [own], message="ada's posts leave grace's feed")
    # Still connected: grace may still open ada's connections-only post.
    assert feed.get(f"/v1/posts/{private}", headers=auth(grace)).status_code == 200
    # Following again puts them back.
    publish_events(follows(grace, ada))
    eventually(lambda: ids(feed, auth, grace) == [own, private], message="refollow restores ada's posts")


def test_removing_a_connection_takes_their_posts_out(feed, auth, unique, publish_events):
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)
    publish_events(*connected(ada, grace))
    public, private = write(feed, auth, ada, "all"), write(feed, auth, ada, "ours", "connections")
    eventually(shows(feed, auth, grace, private))

    publish_events(new_event("connections", "connection.removed",
                             {"remover": ada, "other": grace, "at": LATER, "version": next_version()}))

    # The store's replica is the last thing the handler commits (the timeline is trimmed before it).
    eventually(lambda: feed.get(f"/v1/posts/{private}", headers=auth(grace)).status_code == 404,
               message="the connections-only post is hidden from the removed connection")
    assert ids(feed, auth, grace) == []
    assert feed.get(f"/v1/posts/{public}", headers=auth(grace)).status_code == 200


def test_a_block_hides_each_from_the_other(feed, auth, unique, publish_events):
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)
    publish_events(follows(grace, ada))
    public = write(feed, auth, ada, "all")
    eventually(shows(feed, auth, grace, public))

    publish_events(new_event("connections", "block.added", {"blocker": ada, "blocked": grace, "at": LATER,
                                                              "version": next_version()}))

    eventually(lambda: feed.get(f"/v1/posts/{public}", headers=auth(grace)).status_code == 404,
               message="the block hides ada's post from grace")
    assert ids(feed, auth, grace) == []
    assert feed.get(f"/v1/members/{ada}/posts", headers=auth(grace)).json["items"] == []


def test_a_deleted_post_is_gone_from_every_feed(feed, auth, unique, publish_events):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    ids(feed, auth, grace), ids(feed, auth, linus)
    publish_events(follows(grace, ada), *connected(ada, linus))
    kept, doomed = write(feed, auth, ada, "stays"), write(feed, auth, ada, "goes")
    for member in (ada, grace, linus):
        eventually(shows(feed, auth, member, doomed))

    assert feed.delete(f"/v1/posts/{doomed}", headers=auth(ada)).status_code == 204

    for member in (ada, grace, linus):
        assert ids(feed, auth, member) == [kept]
        assert feed.get(f"/v1/posts/{doomed}", headers=auth(member)).status_code == 404


def test_a_flushed_cache_gives_the_same_feed_back(feed, auth, unique, publish_events, cache):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    ids(feed, auth, grace)
    publish_events(follows(grace, ada), *connected(grace, linus))
    posts = [write(feed, auth, ada, "a"), write(feed, auth, linus, "l", "connections"),
             write(feed, auth, grace, "g"), write(feed, auth, ada, "ours", "connections")]
    eventually(lambda: len(ids(feed, auth, grace)) == 3, message="three posts reach grace")
    before = feed_of(feed, auth, grace)

    cache.delete(keys.timeline(grace))

    assert feed_of(feed, auth, grace) == before
    assert [p["id"] for p in before["items"]] == [posts[2], posts[1], posts[0]]


def test_an_inactive_member_is_skipped_by_fan_out_and_rebuilt_on_the_next_read(feed, auth, unique,
                                                                               publish_events, cache):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    ids(feed, auth, linus)
    publish_events(follows(grace, ada), follows(linus, ada))
    first = write(feed, auth, ada, "while grace was away")
    eventually(lambda: first in cache.zrange(keys.timeline(linus), 0, -1), message="fan-out to active linus")
    # grace never read her feed: the same fan-out wrote nothing for her.
    assert not cache.exists(keys.timeline(grace))

    eventually(shows(feed, auth, grace, first), message="the rebuilt feed")
    assert cache.ttl(keys.timeline(grace)) > 13 * 24 * 3600


def test_pages_are_newest_first_and_stable_under_new_posts(feed, auth, unique):
    ada = unique("ada")
    written = [write(feed, auth, ada, f"post {i}") for i in range(5)]

    first = feed_of(feed, auth, ada, limit=2)
    newer = write(feed, auth, ada, "arrives between pages")
    second = feed_of(feed, auth, ada, limit=2, cursor=first["next_cursor"])
    third = feed_of(feed, auth, ada, limit=2, cursor=second["next_cursor"])

    seen = [p["id"] for page in (first, second, third) for p in page["items"]]
    assert seen == written[::-1]
    assert third["next_cursor"] is None
    assert ids(feed, auth, ada)[0] == newer


def test_feed_posts_are_hydrated_with_counts_and_the_readers_like(feed, auth, unique, publish_events):
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)
    publish_events(follows(grace, ada))
    post = write(feed, auth, ada, "like me")
    eventually(shows(feed, auth, grace, post))
    feed.put(f"/v1/posts/{post}/like", headers=auth(grace))
    feed.post(f"/v1/posts/{post}/comments", json={"text": "nice"}, headers=auth(grace))

    item = feed_of(feed, auth, grace)["items"][0]

    assert {k: item[k] for k in ("author", "text", "likes", "comments", "liked_by_me")} \
        == {"author": ada, "text": "like me", "likes": 1, "comments": 1, "liked_by_me": True}
    assert feed_of(feed, auth, ada)["items"][0]["liked_by_me"] is False


@pytest.mark.parametrize("entry", ["no-separator", "~", "ada~", "~123", "bad member~1-1", "x" * 5000 + "~1"])
def test_a_feed_read_survives_any_entry_of_its_timeline_and_drops_it(feed, auth, unique, cache, entry):
    grace = unique("grace")
    kept = write(feed, auth, grace, "still here")
    ids(feed, auth, grace)  # the timeline is live
    newest = float(cache.zrevrange(keys.timeline(grace), 1, 1, withscores=True)[0][1]) + 1

    cache.zadd(keys.timeline(grace), {entry: newest})

    assert ids(feed, auth, grace) == [kept]
    assert ids(feed, auth, grace) == [kept]
    assert cache.zscore(keys.timeline(grace), entry) is None, "the bad entry is taken out of the timeline"


@pytest.fixture(scope="module")
def feed_store(settings):
    return store_client.connect(settings.store_url("feed"))


def test_an_unfollow_stamped_before_the_follow_it_ends_still_ends_it(feed, auth, unique, publish_events,
                                                                    feed_store):
    """Follow and unfollow flipped from two API processes: the unfollow, applied after the
    follow by the follows store, may carry the earlier time. The feed orders them by version."""
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)
    publish_events(follows(grace, ada, since="2026-01-01T00:00:00.500Z", version=1),
                   unfollows(grace, ada, at="2026-01-01T00:00:00.100Z", version=2))
    eventually(lambda: feed_store.get(keys.follow_version(grace, ada)) == "2", message="both events applied")

    assert feed_store.zscore(keys.following(grace), ada) is None
    assert feed_store.zscore(keys.followers(ada), grace) is None
    post = write(feed, auth, ada, "not for grace's feed")
    mine = write(feed, auth, grace, "mine")
    eventually(shows(feed, auth, grace, mine))
    assert post not in ids(feed, auth, grace)


def test_an_older_version_of_a_pairs_change_arriving_late_changes_nothing(feed, auth, unique, publish_events,
                                                                         feed_store, settings):
    """A copy of an older change of the pair (a relay that published twice, a replay) comes after
    the removal: the connection stays removed and the connections-only post hidden."""
    ada, grace = unique("ada"), unique("grace")
    ids(feed, auth, grace)
    accepted = new_event("connections", "invitation.accepted", {
        "invitation_id": uuid.uuid4().hex, "inviter": ada, "invitee": grace, "at": T0, "version": 1})
    removed = new_event("connections", "connection.removed", {"remover": ada, "other": grace, "at": LATER,
                                                              "version": 2})
    publish_events(follows(grace, ada), removed, accepted)
    # The pair's events share a partition: once the late copy is handled, so is the removal.
    handled = f"dedup:{settings.group('feed.audience')}:{accepted.dedup_key}"
    eventually(lambda: feed_store.exists(handled), message="the late copy handled")
    assert feed_store.get(keys.pair_version(ada, grace)) == "2"
    private = write(feed, auth, ada, "ours", "connections")
    marker = write(feed, auth, ada, "all")
    eventually(shows(feed, auth, grace, marker))

    assert not feed_store.sismember(keys.connections(ada), grace)
    assert feed.get(f"/v1/posts/{private}", headers=auth(grace)).status_code == 404
    assert private not in ids(feed, auth, grace)
