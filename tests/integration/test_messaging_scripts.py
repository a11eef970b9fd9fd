"""Each Lua script of the messaging store, called directly on the real Redis: every reply code,
and every script's keys in one hash slot."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from services.messaging.store import (
    CLOSE_MEMBER,
    HIDE,
    PAIR,
    PROJECT,
    READ,
    SEND,
    Keys,
    bell,
    with_outbox,
)
from shared import store_client
from shared.slots import CrossSlot, slot

keys = Keys(64)
EVENT = ["topic", "t", "key", "k", "value", '{"data":{"seq":0,"version":0,"up_to":0,"unread_count":0}}']


@pytest.fixture(scope="module")
def store(settings):
    client = store_client.connect(settings.store_url("messaging"))
    yield client
    client.close()


@pytest.fixture
def cid():
    return uuid.uuid4().hex


def conversation_keys(cid: str, outbox: str, request: str = "r") -> dict:
    return {"conversation": keys.conversation(cid), "messages": keys.messages(cid),
            "request": keys.request(cid, "ada", request), "outbox": outbox}


def outbox_of(cid: str) -> str:
    return f"messaging:{keys.tag(cid)}:test-outbox"


def send(store, cid, sender="ada", create="1", request_ttl=0, request="r", wake=""):
    return SEND(store, keys=conversation_keys(cid, outbox_of(cid), request), sender=sender, kind="direct",
                participants=json.dumps(["ada", "grace"]), text="hi", excerpt="hi", now=1000,
                request_ttl=request_ttl, create=create, wake=wake, event=EVENT)


def test_send_publishes_a_wake_up_for_a_new_message_and_not_for_a_repeated_request(store, cid):
    channel = f"test-wake:{cid}"
    wakeups = store.pubsub(ignore_subscribe_messages=True)
    wakeups.subscribe(channel)
    try:
        wakeups.get_message(timeout=1)  # the subscription's confirmation
        assert send(store, cid, request_ttl=60, request="once", wake=channel)[0] == "created"
        assert send(store, cid, request_ttl=60, request="once", wake=channel)[0] == "duplicate"
        received = []
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            message = wakeups.get_message(timeout=0.1)
            if message is not None:
                received.append(message["data"])
        assert received == ["1"]
    finally:
        wakeups.close()


def test_send_creates_then_appends_and_numbers_each_message(store, cid):
    assert send(store, cid)[:2] == ["created", 1]
    assert send(store, cid, sender="grace")[:2] == ["sent", 2]
    entry = store.xrange(outbox_of(cid))[-1][1]
    assert json.loads(entry["value"])["data"] == {"seq": 2, "version": 2, "up_to": 0, "unread_count": 0}
    record = store.hgetall(keys.conversation(cid))
    assert (record["unread:ada"], record["unread:grace"], record["read:grace"]) == ("1", "0", "2")


def test_send_answers_not_found_when_it_may_not_create_and_not_participant_for_others(store, cid):
    assert send(store, cid, create="0")[0] == "not_found"
    send(store, cid)
    assert send(store, cid, sender="eve")[0] == "not_participant"


def test_send_with_a_request_key_seen_before_answers_duplicate_with_the_first_seq(store, cid):
    assert send(store, cid, request_ttl=60)[:2] == ["created", 1]
    assert send(store, cid, request_ttl=60)[:2] == ["duplicate", 1]
    assert store.hget(keys.conversation(cid), "last_seq") == "1"


def read(store, cid, member="grace", up_to=""):
    return READ(store, keys={"conversation": keys.conversation(cid), "messages": keys.messages(cid),
                             "outbox": outbox_of(cid)}, member=member, up_to=up_to, event=EVENT)


def test_read_moves_forward_counts_what_follows_and_never_moves_back(store, cid):
    for _ in range(3):
        send(store, cid)
    assert read(store, cid, up_to=1) == ["read", 1, 2]
    assert read(store, cid, up_to=1) == ["unchanged", 1, 2]
    assert read(store, cid) == ["read", 3, 0]
    assert read(store, cid, up_to=2) == ["unchanged", 3, 0]


def test_read_answers_not_found_and_no_such_message(store, cid):
    assert read(store, cid)[0] == "not_found"
    send(store, cid)
    assert read(store, cid, member="eve")[0] == "not_found"
    assert read(store, cid, up_to=7)[0] == "no_such_message"


def project(store, member, cid, version, kind="message", unread="1", score=5):
    k = {"entries": keys.entries(member), "inbox": keys.inbox(member), "unread": keys.unread(member),
         "live": keys.live_stream(member), "closed": keys.closed(member)}
    return PROJECT(store, keys=k, conversation_id=cid, version=version, kind=kind, score=score, unread=unread,
                   live_cap=100, bell=bell(member), entry=["type", kind, "conversation_id", cid, "seq", 1])


def test_project_applies_a_newer_version_only(store, cid):
    member = f"m-{uuid.uuid4().hex[:8]}"
    assert project(store, member, cid, 2) == "applied"
    assert project(store, member, cid, 2) == "stale"
    assert project(store, member, cid, 1) == "stale"
    assert store.zscore(keys.inbox(member), cid) == 5 and store.sismember(keys.unread(member), cid)
    assert store.xlen(keys.live_stream(member)) == 1


def test_hide_keeps_older_messages_out_and_lets_a_newer_one_bring_it_back(store, cid):
    member = f"m-{uuid.uuid4().hex[:8]}"
    project(store, member, cid, 1)
    assert HIDE(store, keys={"entries": keys.entries(member), "inbox": keys.inbox(member),
                             "unread": keys.unread(member)}, conversation_id=cid, version=3) == 1
    assert project(store, member, cid, 3) == "applied"  # a version the hide covers
    assert store.zscore(keys.inbox(member), cid) is None
    assert project(store, member, cid, 4) == "applied"
    assert store.zscore(keys.inbox(member), cid) == 5


def test_close_member_erases_the_list_once_and_project_then_answers_closed(store, cid):
    member = f"m-{uuid.uuid4().hex[:8]}"
    project(store, member, cid, 1)
    k = {"closed": keys.closed(member), "entries": keys.entries(member), "inbox": keys.inbox(member),
         "unread": keys.unread(member), "live": keys.live_stream(member)}
    assert CLOSE_MEMBER(store, keys=k, version=9) == 1
    assert CLOSE_MEMBER(store, keys=k, version=9) == 0
    assert project(store, member, cid, 2) == "closed"
    assert store.exists(keys.inbox(member), keys.entries(member), keys.live_stream(member)) == 0


def test_pair_applies_a_newer_version_only_and_keeps_each_blockers_mark(store):
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    key = {"pair": keys.pair(a, b)}
    assert PAIR(store, keys=key, version=2, connected="1", blocker="", block="") == 1
    assert PAIR(store, keys=key, version=1, connected="0", blocker="", block="") == 0
    assert PAIR(store, keys=key, version=3, connected="0", blocker=a, block="1") == 1
    assert store.hgetall(keys.pair(a, b)) == {"version": "3", "connected": "0", f"blocked:{a}": "1"}
    assert PAIR(store, keys=key, version=4, connected="", blocker=a, block="0") == 1
    assert store.hgetall(keys.pair(a, b)) == {"version": "4", "connected": "0"}


def test_a_conversations_keys_and_a_members_keys_each_share_one_slot(cid):
    assert len({slot(k) for k in conversation_keys(cid, outbox_of(cid)).values()}) == 1
    member = "ada"
    assert len({slot(k) for k in (keys.inbox(member), keys.entries(member), keys.unread(member),
                                  keys.closed(member), keys.live_stream(member), keys.live_streams(member),
                                  keys.live_beats(member))}) == 1


def test_a_conversation_script_refuses_keys_of_another_slot_even_beside_the_outbox(store, cid):
    other = next(c for c in (uuid.uuid4().hex for _ in range(1000)) if keys.tag(c) != keys.tag(cid))
    wrong = {**conversation_keys(cid, outbox_of(cid)), "messages": keys.messages(other)}
    with pytest.raises(CrossSlot):
        with_outbox(SEND, store, keys={**wrong, "outbox": "outbox:untagged"}, sender="ada", kind="direct",
                    participants="[]", text="", excerpt="", now=0, request_ttl=0, create="1", wake="", event=EVENT)
