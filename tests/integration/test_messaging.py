"""Messaging through HTTP, with the real Kafka and Redis: who may write to whom, conversations
of two and groups, the lists, read receipts, hiding, blocks, removals and closed accounts."""
from __future__ import annotations

import pytest

from shared.clock import now_ms, rfc3339
from shared.events import new_event
from tests.support.http import assert_problem
from tests.support.infra import (
    EventPublisher,
    eventually,
    next_millisecond,
    next_version,
)


@pytest.fixture(scope="module")
def running(workers):
    workers("connections")  # its relay publishes the connections the messaging replica learns
    workers("messaging")


@pytest.fixture
def api(apps, running):
    return apps("messaging")


@pytest.fixture
def start(api, auth):
    def start(sender, *participants, text="Hello", headers=None):
        return api.post("/v1/conversations", json={"participants": list(participants), "text": text},
                        headers={**auth(sender), **(headers or {})})
    return start


@pytest.fixture
def send(api, auth):
    def send(sender, conversation_id, text="Again", headers=None):
        return api.post(f"/v1/conversations/{conversation_id}/messages", json={"text": text},
                        headers={**auth(sender), **(headers or {})})
    return send


@pytest.fixture
def listed(api, auth):
    """``listed(member)`` → the ids of the member's conversations, newest activity first."""
    return lambda member, **q: api.get("/v1/conversations", query_string=q, headers=auth(member)).get_json()


def ids(page) -> list[str]:
    return [c["id"] for c in page["items"]]


# --- who may write to whom ---------------------------------------------------------------

def test_connections_write_to_each_other_and_writing_again_adds_to_their_one_conversation(
        start, send, api, auth, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)

    first = start(ada, grace, text="Hello Grace")
    again = start(grace, ada, text="Hello Ada")
    reply = send(ada, first.get_json()["conversation"]["id"], text="How are you?")

    assert first.status_code == 201 and again.status_code == 200, (first.get_json(), again.get_json())
    conversation = first.get_json()["conversation"]
    assert again.get_json()["conversation"]["id"] == conversation["id"]
    assert conversation["kind"] == "direct" and first.headers["Location"] == f"/v1/conversations/{conversation['id']}"
    assert reply.status_code == 201
    assert set(reply.get_json()) == {"id", "conversation_id", "sender", "text", "sent_at"}
    messages = api.get(f"/v1/conversations/{conversation['id']}/messages", headers=auth(grace)).get_json()
    assert [(m["sender"], m["text"]) for m in messages["items"]] == \
        [(ada, "How are you?"), (grace, "Hello Ada"), (ada, "Hello Grace")]


def test_a_conversation_is_possible_the_moment_the_client_sees_the_connection_accepted(start, connect, unique):
    # No wait between the accept's answer and the first message: the messaging replica learns the
    # connection through Kafka a moment later, and the send waits for it.
    for i in range(3):
        ada, grace = unique(f"ada{i}"), unique(f"grace{i}")
        connect(ada, grace)
        response = start(ada, grace)
        assert response.status_code == 201, response.get_json()


def test_followers_and_strangers_get_not_connected(start, apps, auth, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    assert apps("follows").put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201

    follower = start(ada, grace)
    stranger = start(linus, grace)

    assert assert_problem(follower, 403, "not_connected")["not_connected"] == [grace]
    assert assert_problem(stranger, 403, "not_connected")["not_connected"] == [grace]


def test_second_degree_members_get_not_connected(start, connect, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace)
    connect(grace, linus)

    assert_problem(start(ada, linus), 403, "not_connected")


def test_a_group_needs_the_sender_connected_to_each_member_and_names_who_is_not(start, connect, unique):
    ada, grace, linus, hopper = unique("ada"), unique("grace"), unique("linus"), unique("hopper")
    connect(ada, grace)
    connect(ada, linus)

    refused = start(ada, grace, linus, hopper)
    group = start(ada, grace, linus)

    assert assert_problem(refused, 403, "not_connected")["not_connected"] == [hopper]
    assert group.status_code == 201
    assert group.get_json()["conversation"]["kind"] == "group"
    assert sorted(p["member"] for p in group.get_json()["conversation"]["participants"]) == sorted([ada, grace, linus])


def test_each_group_started_is_a_new_conversation(start, connect, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace)
    connect(ada, linus)

    first, second = start(ada, grace, linus), start(ada, grace, linus)

    assert first.status_code == second.status_code == 201
    assert first.get_json()["conversation"]["id"] != second.get_json()["conversation"]["id"]


@pytest.mark.parametrize("participants,text,code", [
    ([], "Hi", "no_participants"),
    (["{me}"], "Hi", "cannot_message_self"),
    (["{other}", "{other}"], "Hi", "duplicate_participants"),
    (["{other}"], "", "empty_text"),
    (["{other}"], "   ", "empty_text"),
    (["{other}"], "x" * 8001, "text_too_long"),
    ([f"m{i}" for i in range(50)], "Hi", "too_many_participants"),
])
def test_a_start_without_anyone_else_or_without_a_text_that_fits_is_a_422(api, auth, unique, participants, text,
                                                                          code):
    me, other = unique("ada"), unique("grace")
    named = [p.format(me=me, other=other) for p in participants]

    response = api.post("/v1/conversations", json={"participants": named, "text": text}, headers=auth(me))

    assert_problem(response, 422, code)


def test_a_text_of_exactly_8000_characters_is_sent(start, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)

    assert start(ada, grace, text="x" * 8000).status_code == 201


def test_a_non_participant_gets_conversation_not_found(start, send, api, auth, connect, unique):
    ada, grace, eve = unique("ada"), unique("grace"), unique("eve")
    connect(ada, grace)
    cid = start(ada, grace).get_json()["conversation"]["id"]

    for response in (api.get(f"/v1/conversations/{cid}", headers=auth(eve)),
                     api.get(f"/v1/conversations/{cid}/messages", headers=auth(eve)),
                     send(eve, cid),
                     api.post(f"/v1/conversations/{cid}/read", json={}, headers=auth(eve)),
                     api.delete(f"/v1/conversations/{cid}", headers=auth(eve))):
        assert_problem(response, 404, "conversation_not_found")


# --- removals and blocks -----------------------------------------------------------------

def test_after_a_removal_the_history_stays_readable_to_both_and_sending_is_refused(
        start, send, api, apps, auth, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace, text="Before").get_json()["conversation"]["id"]

    assert apps("connections").delete(f"/v1/connections/{grace}", headers=auth(ada)).status_code == 204
    # The removal reaches the messaging replica through Kafka: until then a send may still pass.
    refused = eventually(lambda: (r := send(grace, cid, text="After?")).status_code == 403 and r, timeout=10,
                         message="sends refused after the removal")

    assert_problem(refused, 403, "not_connected")
    for member in (ada, grace):
        history = api.get(f"/v1/conversations/{cid}/messages", headers=auth(member)).get_json()["items"]
        assert history[-1]["text"] == "Before"
        assert api.get(f"/v1/conversations/{cid}", headers=auth(member)).status_code == 200


def test_a_message_sent_in_the_moment_of_a_removal_is_kept_or_refused_never_lost(
        start, send, api, apps, auth, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace).get_json()["conversation"]["id"]

    apps("connections").delete(f"/v1/connections/{grace}", headers=auth(ada))
    answers = [send(ada, cid, text=f"racing {i}") for i in range(20)]

    def refused():
        answers.append(send(ada, cid, text=f"racing {len(answers)}"))
        return answers[-1].status_code == 403
    # The removal is applied in the end: a send is refused.
    eventually(refused, timeout=10, message="a send refused once the removal reached the replica")
    assert_problem(answers[-1], 403, "not_connected")
    stored = [m["text"] for m in api.get(f"/v1/conversations/{cid}/messages", query_string={"limit": 100},
                                         headers=auth(grace)).get_json()["items"]]
    accepted = [f"racing {i}" for i, r in enumerate(answers) if r.status_code == 201]
    assert {r.status_code for r in answers} <= {201, 403}
    assert sorted(t for t in stored if t.startswith("racing")) == sorted(accepted)
    # Once one is refused, every later one is: the replica does not go back.
    codes = [r.status_code for r in answers]
    assert codes == sorted(codes)


def test_messages_make_no_notifications_where_a_follow_does(
        start, send, api, apps, auth, connect, listed, workers, unique):
    workers("follows"), workers("notifications")
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace)
    cid = start(ada, grace, text="Hello").get_json()["conversation"]["id"]
    assert send(ada, cid, text="Are you there?").status_code == 201
    assert send(grace, cid, text="Yes").status_code == 201
    # The messages are through messaging.events: grace's list has them.
    eventually(lambda: (page := listed(grace))["items"] and page["items"][0]["last_message"]["excerpt"] == "Yes",
               message="grace's list shows the last message")

    # Something that does notify, after the messages: a follow.
    assert apps("follows").put(f"/v1/following/{grace}", headers=auth(linus)).status_code == 201

    def notified():
        items = apps("notifications").get("/v1/notifications", headers=auth(grace)).get_json()["items"]
        return {n["type"] for n in items} >= {"invitation_received", "new_follower"} and items
    items = eventually(notified, timeout=20, message="grace notified of the invitation and the follow")
    assert sorted((n["type"], n["actors"]) for n in items) == \
        [("invitation_received", [ada]), ("new_follower", [linus])]


@pytest.mark.parametrize("starter_blocks", [False, True], ids=["the_other_blocks", "the_starter_blocks"])
def test_a_block_either_way_hides_the_conversation_from_both_and_refuses_sends(
        start, send, api, apps, auth, connect, listed, unique, starter_blocks):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace).get_json()["conversation"]["id"]
    eventually(lambda: ids(listed(grace)) == [cid], message="grace's list shows the conversation")
    blocker, blocked = (ada, grace) if starter_blocks else (grace, ada)

    assert apps("connections").put(f"/v1/blocks/{blocked}", headers=auth(blocker)).status_code == 204

    eventually(lambda: api.get(f"/v1/conversations/{cid}", headers=auth(ada)).status_code == 404,
               message="the conversation hidden by the block")
    for member in (ada, grace):
        assert ids(listed(member)) == []
        assert_problem(api.get(f"/v1/conversations/{cid}", headers=auth(member)), 404, "conversation_not_found")
        assert_problem(api.get(f"/v1/conversations/{cid}/messages", headers=auth(member)), 404)
    for refused in (start(ada, grace), send(ada, cid), send(grace, cid)):
        body = assert_problem(refused, 403, "messaging_refused")
        assert "block" not in body["detail"].lower()


def test_a_blocked_member_cannot_be_added_to_a_group_nor_write_into_one_with_the_blocker(
        start, send, apps, auth, connect, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace)
    connect(ada, linus)
    connect(grace, linus)
    group = start(ada, grace, linus).get_json()["conversation"]["id"]

    apps("connections").put(f"/v1/blocks/{linus}", headers=auth(grace))

    refused = eventually(lambda: (r := send(linus, group)).status_code == 403 and r, timeout=10,
                         message="the blocked member's sends into the group refused")
    assert_problem(refused, 403, "messaging_refused")
    assert send(ada, group).status_code == 201  # the others write on
    assert send(grace, group).status_code == 201
    new_group = start(grace, ada, linus)
    assert assert_problem(new_group, 403, "not_connected")["not_connected"] == [linus]


# --- lists, receipts, hiding --------------------------------------------------------------

def test_the_list_shows_newest_activity_first_with_the_last_message_and_the_unread_count(
        start, send, connect, listed, unique):
    me, a, b = unique("me"), unique("a"), unique("b")
    connect(me, a)
    connect(me, b)
    with_a = start(a, me, text="from a").get_json()["conversation"]["id"]
    next_millisecond()
    with_b = start(b, me, text="from b").get_json()["conversation"]["id"]
    next_millisecond()
    send(a, with_a, text="a again")

    page = eventually(lambda: (p := listed(me)) and ids(p) == [with_a, with_b] and p, message="list order")

    first = page["items"][0]
    assert first["last_message"]["sender"] == a and first["last_message"]["excerpt"] == "a again"
    assert first["unread_count"] == 2 and page["items"][1]["unread_count"] == 1
    assert first["updated_at"] == first["last_message"]["sent_at"]
    assert sorted(first["participants"]) == sorted([me, a])


def test_the_list_is_cursor_paged_and_stable_under_new_messages(start, send, connect, listed, unique):
    me = unique("me")
    others = [unique(f"o{i}") for i in range(5)]
    conversations = []
    for other in others:
        connect(me, other)
        conversations.append(start(other, me).get_json()["conversation"]["id"])
        next_millisecond()
    eventually(lambda: len(ids(listed(me, limit=10))) == 5, message="five conversations listed")

    first = listed(me, limit=2)
    send(others[0], conversations[0], text="the oldest moves to the top")
    eventually(lambda: ids(listed(me, limit=1)) == [conversations[0]], message="the oldest moved up")
    rest = listed(me, limit=2, cursor=first["next_cursor"])

    # The one that moved up is above the cursor now: not shown again, and nothing skipped.
    assert ids(first) == [conversations[4], conversations[3]]
    assert ids(rest) == [conversations[2], conversations[1]] and rest["next_cursor"] is None


def test_read_receipts_move_only_forward_and_the_unread_count_follows(start, send, api, auth, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace, text="one").get_json()["conversation"]["id"]
    second = send(ada, cid, text="two").get_json()["id"]
    third = send(ada, cid, text="three").get_json()["id"]
    badge = lambda: api.get("/v1/conversations/unread-count", headers=auth(grace)).get_json()["count"]
    eventually(lambda: badge() == 1, message="grace's badge counts the conversation")

    to_second = api.post(f"/v1/conversations/{cid}/read", json={"up_to": second}, headers=auth(grace)).get_json()
    back = api.post(f"/v1/conversations/{cid}/read", json={"up_to": f"{cid}-1"}, headers=auth(grace)).get_json()
    receipts = api.get(f"/v1/conversations/{cid}", headers=auth(ada)).get_json()["participants"]

    assert to_second == {"conversation_id": cid, "read_up_to": second, "unread_count": 1}
    assert back == to_second
    assert {p["member"]: p["read_up_to"] for p in receipts} == {ada: third, grace: second}
    newest = api.post(f"/v1/conversations/{cid}/read", json={}, headers=auth(grace)).get_json()
    assert newest == {"conversation_id": cid, "read_up_to": third, "unread_count": 0}
    eventually(lambda: badge() == 0, message="grace's badge cleared")


def test_reading_up_to_a_message_of_another_conversation_is_a_422(start, api, auth, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace).get_json()["conversation"]["id"]

    for up_to in ("nonsense", f"{cid}-99", f"{'0' * 32}-1"):
        response = api.post(f"/v1/conversations/{cid}/read", json={"up_to": up_to}, headers=auth(grace))
        assert_problem(response, 422, "message_not_found")


def test_hiding_a_conversation_hides_it_for_the_caller_alone_until_a_new_message(
        start, send, api, auth, connect, listed, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace).get_json()["conversation"]["id"]
    eventually(lambda: ids(listed(grace)) == [cid] and ids(listed(ada)) == [cid], message="both lists")

    assert api.delete(f"/v1/conversations/{cid}", headers=auth(grace)).status_code == 204

    assert ids(listed(grace)) == []
    assert ids(listed(ada)) == [cid]
    send(ada, cid, text="still there?")
    eventually(lambda: ids(listed(grace)) == [cid], message="a new message brings it back")


def test_a_message_sent_twice_with_one_idempotency_key_is_stored_once(start, send, api, auth, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    key = {"Idempotency-Key": unique("send")}
    first = start(ada, grace, text="once", headers=key)
    again = start(ada, grace, text="once", headers=key)
    cid = first.get_json()["conversation"]["id"]
    m1, m2 = send(ada, cid, text="twice?", headers=key), send(ada, cid, text="twice?", headers=key)

    messages = api.get(f"/v1/conversations/{cid}/messages", headers=auth(grace)).get_json()["items"]

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert m1.status_code == m2.status_code == 201 and m1.get_json() == m2.get_json()
    assert [m["text"] for m in messages] == ["twice?", "once"]


def test_a_group_started_twice_with_one_idempotency_key_is_one_group(start, api, auth, connect, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(ada, grace)
    connect(ada, linus)
    key = {"Idempotency-Key": unique("group")}

    first, again = start(ada, grace, linus, headers=key), start(ada, grace, linus, headers=key)

    assert first.get_json()["conversation"]["id"] == again.get_json()["conversation"]["id"]
    cid = first.get_json()["conversation"]["id"]
    assert len(api.get(f"/v1/conversations/{cid}/messages", headers=auth(linus)).get_json()["items"]) == 1


def test_the_messages_are_cursor_paged_newest_first_and_new_ones_do_not_shift_a_page(
        start, send, api, auth, connect, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace, text="m1").get_json()["conversation"]["id"]
    for i in range(2, 6):
        send(ada, cid, text=f"m{i}")
    page = lambda **q: api.get(f"/v1/conversations/{cid}/messages", query_string=q,
                               headers=auth(grace)).get_json()

    first = page(limit=2)
    send(ada, cid, text="m6")
    second = page(limit=2, cursor=first["next_cursor"])
    third = page(limit=2, cursor=second["next_cursor"])

    assert [m["text"] for m in first["items"]] == ["m5", "m4"]
    assert [m["text"] for m in second["items"]] == ["m3", "m2"]
    assert [m["text"] for m in third["items"]] == ["m1"] and third["next_cursor"] is None


# --- closed accounts ----------------------------------------------------------------------

def test_a_closed_accounts_messages_stay_in_the_others_history_as_from_a_former_member(
        start, send, api, auth, connect, listed, settings, unique):
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace, text="from ada").get_json()["conversation"]["id"]
    send(grace, cid, text="from grace")
    eventually(lambda: ids(listed(ada)) == [cid], message="ada's list")

    publish = EventPublisher(settings)
    try:
        publish(new_event("profiles", "member.closed", {"member": ada, "at": rfc3339(now_ms()),
                                                        "version": next_version()}))
    finally:
        publish.close()

    eventually(lambda: listed(ada)["items"] == [], message="the closed account's list erased")
    history = api.get(f"/v1/conversations/{cid}/messages", headers=auth(grace)).get_json()["items"]
    assert [(m["sender"], m["text"]) for m in history] == [(grace, "from grace"), (None, "from ada")]
    assert [p["member"] for p in api.get(f"/v1/conversations/{cid}", headers=auth(grace)).get_json()["participants"]] \
        == [grace]
    assert_problem(send(grace, cid), 403, "not_connected")


def test_a_message_takes_its_limits_and_the_pair_records_in_one_round_trip_then_its_script(
        start, send, api, connect, unique):
    from tests.support.trips import app_clients, round_trips

    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    cid = start(ada, grace).get_json()["conversation"]["id"]
    assert send(ada, cid).status_code == 201  # the process knows the conversation now
    answers = []

    trips = round_trips(app_clients(api), lambda: answers.append(send(ada, cid).status_code))

    assert answers == [201]
    assert trips == 2
