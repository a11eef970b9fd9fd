"""Keys the shared HTTP layer keeps, and how it finds a write's slot (no I/O)."""
from __future__ import annotations

import pytest
import redis

from shared.http.idempotency import _hash_tag, _queued_keys, record_key
from shared.slots import slot, tag
from shared.store_client import cluster_nodes


def test_an_idempotency_record_starts_with_the_service_and_sits_in_the_members_shard():
    key = record_key("feed", "feed.posts", "ada", "k1", 64)
    assert key == f"feed:{tag('ada', 64)}:idempotency:feed.posts:ada:k1"
    assert slot(key) == slot(f"feed:{tag('ada', 64)}:anything")


def test_a_hash_tag_made_from_a_key_has_that_keys_slot():
    for key in ("follows:{s17}:outbox", "outbox:follows", "outbox:ns:feed"):
        assert slot(_hash_tag(key) + ":mark") == slot(key)
    with pytest.raises(ValueError):
        _hash_tag("odd:{}:key")  # no tag of its own, and wrapping it would cut the tag at its "}"


def test_the_write_slot_is_read_from_the_outbox_entry_queued_on_the_pipeline():
    pipe = redis.Redis().pipeline(transaction=True)  # queues without connecting
    pipe.hset("feed:{s5}:post:p1", "text", "hi")
    pipe.xadd("feed:{s5}:outbox", {"event": "{}"})
    assert _queued_keys(pipe) == ["feed:{s5}:outbox"]


def test_a_cluster_url_names_every_node_it_may_start_from():
    assert cluster_nodes("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001") == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
