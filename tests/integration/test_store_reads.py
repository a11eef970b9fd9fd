"""``store_client.read_many`` on a real Redis: many reads in one round trip, as Redis answers them."""
from __future__ import annotations

import pytest
import redis

from shared import slots
from shared.store_client import connect, read_many


@pytest.fixture
def store(settings):
    """A client of one pooled connection: each call meets the connection the last one left."""
    return connect(settings.store_url("feed"), pool_size=1, pool_timeout=5)


@pytest.fixture
def key(unique):
    """``key("c")`` → a key of this test alone."""
    return lambda name: f"test:{slots.tag('ada')}:{unique(name)}"


def test_reads_reply_in_order_as_redis_answers_them(store, key):
    post, likers, follows = key("post"), key("likers"), key("follows")
    store.hset(post, mapping={"a": "1", "b": "x"})
    store.sadd(likers, "grace")
    store.zadd(follows, {"ada": 5})
    try:
        assert read_many(store, [("HMGET", post, "a", "b", "c"), ("SISMEMBER", likers, "grace"),
                                 ("SISMEMBER", likers, "bob"), ("SMISMEMBER", likers, "bob", "grace"),
                                 ("ZMSCORE", follows, "ada", "bob")]) \
            == [["1", "x", None], 1, 0, [0, 1], [5.0, None]]
    finally:
        store.delete(post, likers, follows)


def test_an_error_reply_raises_once_every_reply_is_read_so_the_next_reads_get_their_own(store, key):
    text, other = key("text"), key("other")
    store.set(text, "a string")
    store.set(other, "mine")
    try:
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            read_many(store, [("GET", text), ("HGET", text, "f"), ("GET", other)])
        assert read_many(store, [("GET", other), ("GET", text)]) == ["mine", "a string"]
    finally:
        store.delete(text, other)


def test_reads_after_the_server_closed_the_pooled_connection_go_on_a_new_one(store, settings, key):
    value = key("value")
    store.set(value, "kept")
    try:
        [connection_id] = read_many(store, [("CLIENT", "ID")])
        connect(settings.store_url("feed")).client_kill_filter(_id=connection_id)
        kept, new_id = read_many(store, [("GET", value), ("CLIENT", "ID")])
        assert kept == "kept" and new_id != connection_id
    finally:
        store.delete(value)
