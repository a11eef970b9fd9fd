"""Each script of the connections store, run directly on the real Redis: its reply codes, and
that what it writes stays in one slot (the pair's or the member's)."""
from __future__ import annotations

import json
import uuid

import pytest

from services.connections import projections
from services.connections import store as keys
from shared.store_client import connect

NOW = 1_700_000_000_000


def event(version: bool = False) -> list[str]:
    """An outbox entry's field list; with ``version``, carrying the placeholder a script stamps."""
    return ["topic", "t", "key", "k", "value", json.dumps({"data": {"version": 0}} if version else {"data": {}}, separators=(",", ":"))]


@pytest.fixture
def store(settings):
    return connect(settings.store_url("connections"))


@pytest.fixture
def pair(unique):
    """Two members of this test alone, and the pair's keys."""
    a, b = unique("ada"), unique("grace")

    class Pair:
        ada, grace = a, b
        rel = keys.relationship(a, b)
        outbox = f"test:{keys.pair_tag(a, b)}:outbox:{uuid.uuid4().hex[:8]}"

        @staticmethod
        def new_id() -> str:
            return keys.new_id(a, b, uuid.uuid4().hex)
    return Pair


def send(store, p, inviter, invitee, *, id=None, reserved="1", lifts_at="", inviter_full="0", invitee_full="0",
         expected_reverse="", introduction_id="", reverse=None):
    id = id or p.new_id()
    accepted = event(version=True) if expected_reverse else []
    return keys.SEND(store, keys={
        "relationship": p.rel, "invitation": keys.invitation(id), "reverse": keys.invitation(reverse or id),
        "cooldown": keys.reinvite_cooldown(inviter, invitee),
        "introduction": keys.introduction(introduction_id) if introduction_id else keys.invitation(id),
        "outbox": p.outbox, "records": keys.pair_records(inviter, invitee),
    }, inviter=inviter, invitee=invitee, id=id, now=NOW, message="", reserved=reserved, lifts_at=lifts_at,
        inviter_full=inviter_full, invitee_full=invitee_full, expected_reverse=expected_reverse,
        introduction_id=introduction_id, introducer="", n=6, m=len(accepted),
        events=[*event(), *accepted, *(event() if introduction_id else [])])


def decide(store, p, script, invitation_id, caller, **args):
    return script(store, keys={"relationship": p.rel, "invitation": keys.invitation(invitation_id),
                               "outbox": p.outbox, **args.pop("extra", {})}, caller=caller, now=NOW,
                  **args, event=event(version=script is keys.ACCEPT))


def accept(store, p, invitation_id, caller, inviter_full="0", invitee_full="0"):
    return decide(store, p, keys.ACCEPT, invitation_id, caller, inviter_full=inviter_full, invitee_full=invitee_full)


def connected(store, p):
    invitation_id = send(store, p, p.ada, p.grace)[1]
    assert accept(store, p, invitation_id, p.grace) == ["accepted"]


def test_send_creates_an_invitation_once_per_pair_and_direction(store, pair):
    first = send(store, pair, pair.ada, pair.grace)
    assert first[0] == "sent"
    assert dict(zip(first[2][::2], first[2][1::2])) == store.hgetall(pair.rel)
    assert send(store, pair, pair.ada, pair.grace) == ["invitation_pending", first[1]]
    assert store.hmget(pair.rel, "open", "open_by", "open_status", "version") == [first[1], pair.ada, "pending", "1"]


def test_send_across_an_open_invitation_accepts_it_and_stamps_the_pairs_version(store, pair):
    theirs = send(store, pair, pair.grace, pair.ada)[1]
    assert send(store, pair, pair.ada, pair.grace) == ["retry"]  # the reverse was not expected
    accepted = send(store, pair, pair.ada, pair.grace, expected_reverse=theirs, reverse=theirs)
    assert accepted[:2] == ["accepted", theirs]
    # With the pair's record as the script left it, for the projections (no read back).
    assert dict(zip(accepted[2][::2], accepted[2][1::2])) == store.hgetall(pair.rel)
    assert store.hget(keys.invitation(theirs), "status") == "accepted"
    assert store.hget(pair.rel, "connected_at") == str(NOW) and not store.hexists(pair.rel, "open")
    stamped = json.loads(store.xrange(pair.outbox)[-1][1]["value"])
    assert stamped["data"]["version"] == 2


@pytest.mark.parametrize("setup, args, code", [
    ("blocked", {}, "refused"),
    ("connected", {}, "already_connected"),
    ("cooldown", {}, "reinvite_cooldown"),
    ("", {"reserved": "0", "lifts_at": "123"}, "invitation_limit_reached"),
    ("", {"inviter_full": "1"}, "connection_limit_reached"),
])
def test_send_refuses_with_its_reason_and_writes_nothing(store, pair, setup, args, code):
    if setup == "blocked":
        store.hset(pair.rel, f"block:{pair.grace}", NOW)
    elif setup == "connected":
        connected(store, pair)
    elif setup == "cooldown":
        store.set(keys.reinvite_cooldown(pair.ada, pair.grace), NOW + 1000)
    before = store.hgetall(pair.rel), store.xlen(pair.outbox)
    assert send(store, pair, pair.ada, pair.grace, **args)[0] == code
    assert (store.hgetall(pair.rel), store.xlen(pair.outbox)) == before


def test_send_with_an_introduction_no_longer_pending_refuses(store, pair):
    intro = keys.new_id(pair.ada, pair.grace, uuid.uuid4().hex)
    store.hset(keys.introduction(intro), mapping={"id": intro, "status": "declined"})
    assert send(store, pair, pair.ada, pair.grace, introduction_id=intro) == ["introduction_not_pending", "declined"]


def test_accept_answers_each_caller_and_state(store, pair, unique):
    invitation_id = send(store, pair, pair.ada, pair.grace)[1]
    assert accept(store, pair, pair.new_id(), pair.grace) == ["not_found"]
    assert accept(store, pair, invitation_id, unique("stranger")) == ["not_found"]
    assert accept(store, pair, invitation_id, pair.ada) == ["not_invitee"]
    assert accept(store, pair, invitation_id, pair.grace, invitee_full="1") == ["connection_limit_reached", pair.grace]
    assert accept(store, pair, invitation_id, pair.grace, inviter_full="1") == ["connection_limit_reached", pair.ada]
    assert accept(store, pair, invitation_id, pair.grace) == ["accepted"]
    assert accept(store, pair, invitation_id, pair.grace) == ["invitation_not_pending", "accepted"]
    assert json.loads(store.xrange(pair.outbox)[-1][1]["value"])["data"]["version"] == 2


def test_ignore_keeps_the_invitation_open_for_its_inviter(store, pair):
    invitation_id = send(store, pair, pair.ada, pair.grace)[1]
    assert decide(store, pair, keys.IGNORE, invitation_id, pair.ada) == ["not_invitee"]
    assert decide(store, pair, keys.IGNORE, invitation_id, pair.grace) == ["ignored"]
    assert decide(store, pair, keys.IGNORE, invitation_id, pair.grace) == ["invitation_not_pending", "ignored"]
    assert store.hmget(pair.rel, "open", "open_status") == [invitation_id, "ignored"]


def test_withdraw_closes_the_invitation_and_starts_the_cool_down(store, pair):
    invitation_id = send(store, pair, pair.ada, pair.grace)[1]
    cooldown = {"cooldown": keys.reinvite_cooldown(pair.ada, pair.grace)}
    assert decide(store, pair, keys.WITHDRAW, invitation_id, pair.grace, extra=cooldown, cooldown_ms=1000) == [
        "not_inviter"]
    assert decide(store, pair, keys.WITHDRAW, invitation_id, pair.ada, extra=cooldown, cooldown_ms=1000) == [
        "withdrawn"]
    assert decide(store, pair, keys.WITHDRAW, invitation_id, pair.ada, extra=cooldown, cooldown_ms=1000) == [
        "invitation_not_pending", "withdrawn"]
    assert not store.hexists(pair.rel, "open")
    assert store.get(keys.reinvite_cooldown(pair.ada, pair.grace)) == str(NOW + 1000)


def test_remove_ends_a_connection_once(store, pair):
    rel = {"relationship": pair.rel, "outbox": pair.outbox}
    assert keys.REMOVE(store, keys=rel, remover=pair.ada, other=pair.grace, event=event(True)) == ["not_connected"]
    connected(store, pair)
    assert keys.REMOVE(store, keys=rel, remover=pair.ada, other=pair.grace, event=event(True)) == ["removed"]
    assert not store.hexists(pair.rel, "connected_at")


def test_block_ends_the_connection_and_closes_the_invitation_and_unblock_lifts_it_once(store, pair):
    rel = {"relationship": pair.rel, "outbox": pair.outbox}
    invitation_id = send(store, pair, pair.grace, pair.ada)[1]

    def block(expected):
        return keys.BLOCK(store, keys={**rel, "invitation": keys.invitation(invitation_id)}, blocker=pair.ada,
                          blocked=pair.grace, now=NOW, expected_open=expected, n1=6, n2=6,
                          events=[*event(True), *event(True), *event()])
    assert block("") == ["retry"]  # an invitation it did not expect is open
    assert block(invitation_id) == ["blocked"]
    assert block("") == ["exists"]
    assert store.hget(keys.invitation(invitation_id), "status") == "ignored"  # theirs: silently
    assert store.hget(pair.rel, f"block:{pair.ada}") == str(NOW)
    assert keys.UNBLOCK(store, keys=rel, blocker=pair.ada, event=event(True)) == ["unblocked"]
    assert keys.UNBLOCK(store, keys=rel, blocker=pair.ada, event=event(True)) == ["not_blocked"]


def test_introduce_and_decline_answer_each_state(store, pair, unique):
    via = unique("linus")

    def introduce(mutual="1"):
        intro = keys.new_id(pair.ada, pair.grace, uuid.uuid4().hex)
        return keys.INTRODUCE(store, keys={"relationship": pair.rel, "introduction": keys.introduction(intro),
                                           "outbox": pair.outbox},
                              requester=pair.ada, target=pair.grace, via=via, id=intro, now=NOW, note="",
                              mutual=mutual, event=event()), intro

    assert introduce(mutual="0")[0] == ["not_mutual"]
    reply, intro = introduce()
    assert reply == ["requested"]
    assert introduce()[0] == ["introduction_pending", intro]

    def decline(caller):
        return keys.DECLINE_INTRODUCTION(store, keys={"relationship": pair.rel, "introduction": keys.introduction(intro),
                                                      "outbox": pair.outbox}, caller=caller, now=NOW, event=event())
    assert decline(pair.ada) == ["not_found"]  # only the introducer decides
    assert decline(via) == ["declined"]
    assert decline(via) == ["introduction_not_pending", "declined"]
    invitation_id = send(store, pair, pair.grace, pair.ada)[1]
    assert introduce()[0] == ["invitation_pending", invitation_id]
    store.hset(pair.rel, f"block:{pair.grace}", NOW)
    assert introduce()[0] == ["refused"]


def test_reserve_invitation_holds_the_weekly_cap_in_the_inviters_slot(store, unique):
    log = keys.invitation_log(unique("ada"))
    assert keys.RESERVE_INVITATION(store, keys={"log": log}, id="a", now=NOW, window_ms=1000, limit=2) == ["reserved"]
    assert keys.RESERVE_INVITATION(store, keys={"log": log}, id="b", now=NOW + 1, window_ms=1000, limit=2) == [
        "reserved"]
    assert keys.RESERVE_INVITATION(store, keys={"log": log}, id="c", now=NOW + 2, window_ms=1000, limit=2) == [
        "invitation_limit_reached", str(NOW + 1000)]
    # Past the window, the oldest place is free again.
    assert keys.RESERVE_INVITATION(store, keys={"log": log}, id="c", now=NOW + 1001, window_ms=1000, limit=2) == [
        "reserved"]


def test_project_brings_a_members_side_to_a_newer_version_only(store, pair):
    invitation_id = send(store, pair, pair.ada, pair.grace)[1]
    record = store.hgetall(pair.rel)
    assert projections.project_member(store, pair.grace, pair.ada, record)
    assert not projections.project_member(store, pair.grace, pair.ada, record)  # the same version again
    assert store.zrange(keys.received(pair.grace), 0, -1) == [invitation_id]
    assert accept(store, pair, invitation_id, pair.grace) == ["accepted"]
    newer = store.hgetall(pair.rel)
    assert projections.project_member(store, pair.grace, pair.ada, newer)
    assert not projections.project_member(store, pair.grace, pair.ada, record)  # a late copy of the older one
    assert store.zrange(keys.connections(pair.grace), 0, -1) == [pair.ada]
    assert store.zcard(keys.received(pair.grace)) == 0


def test_endorse_needs_a_connection_in_the_endorsees_projection_and_counts_once(store, pair):
    def endorse():
        return keys.ENDORSE(store, keys={
            "connections": keys.connections(pair.grace), "endorsers": keys.endorsers(pair.grace, "go"),
            "skills": keys.endorsement_skills(pair.grace), "names": keys.endorsement_names(pair.grace),
            "outbox": f"test:{keys.member_tag(pair.grace)}:outbox",
        }, endorser=pair.ada, skill_key="go", skill="Go", now=NOW, event=event())
    assert endorse() == ["not_connected"]
    store.zadd(keys.connections(pair.grace), {pair.ada: NOW})
    assert endorse() == ["added", str(NOW), "Go"]
    assert endorse() == ["exists", str(NOW), "Go"]
    assert store.zscore(keys.endorsement_skills(pair.grace), "go") == 1

