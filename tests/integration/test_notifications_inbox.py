"""The notifications inbox: who is notified of what, grouping, mute, read state, the cap.

Incoming events are produced straight to Kafka (the other services are not needed); the
notifications worker consumes them and the inbox is read through HTTP.
"""
from __future__ import annotations

import json
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from services.feed import store as feed_keys
from services.notifications import inbox
from services.notifications import store as keys
from shared.bus.topics import drop_topics, ensure_topics
from shared.bus.transactions import node_of
from shared.bus.worker import Worker
from shared.clock import now_ms, rfc3339
from shared.events import encode, new_event
from shared.events.catalogue import lookup
from tests.support.infra import EventPublisher, eventually, next_version, read_topic
from shared import store_client

HOUR_MS = 3600 * 1000


class Bus:
    """Publishes events as the other services would, and knows when the worker has handled them."""

    def __init__(self, settings):
        self.settings = settings
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
        self.admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
        self.group = settings.group("notifications.inbox")

    def publish(self, service: str, name: str, **data):
        if "version" in lookup(service, name).data().fields:
            data.setdefault("version", next_version())
        event = new_event(service, name, data)
        topic = self.settings.topic(f"{service}.events")
        return self.producer.send(topic, key=event.key.encode(), value=encode(event)).get(10)

    def handled(self, *records) -> None:
        """Wait until the inbox consumer has committed past every one of ``records``."""
        def done():
            committed = self.admin.list_group_offsets(self.group)[self.group]
            return all(committed.get(_tp(r)) is not None and committed[_tp(r)].offset > r.offset for r in records)
        eventually(done, timeout=20, interval=0.1, message="the worker handled the events")

    def close(self):
        self.producer.close()
        self.admin.close()


def _tp(record):
    from kafka import TopicPartition
    return TopicPartition(record.topic, record.partition)


@pytest.fixture(scope="module")
def bus(settings):
    """A namespace where only the notifications worker runs: the events here are the tests'
    stand-ins for the other services, and no real follows worker may answer them."""
    own = settings.replace(namespace=settings.namespace + "-inbox")
    ensure_topics(own)
    worker = Worker("notifications", own).start()
    assert worker.wait_ready(60)
    bus = Bus(own)
    yield bus
    bus.close()
    worker.shutdown()
    drop_topics(own)


@pytest.fixture
def inbox_of(apps, auth):
    def read(member, **query):
        response = apps("notifications").get("/v1/notifications", headers=auth(member), query_string=query)
        assert response.status_code == 200, response.json
        return response.json["items"]
    return read


@pytest.fixture
def unread_count(apps, auth):
    def count(member):
        response = apps("notifications").get("/v1/notifications/unread-count", headers=auth(member))
        assert response.status_code == 200, response.json
        return response.json["count"]
    return count


def at(offset_ms: int = 0) -> str:
    return rfc3339(now_ms() + offset_ms)


def pid() -> str:
    """A post id (of the format the feed mints: ``<member>~<stamp>``)."""
    return f"p~{uuid.uuid4().hex[:12]}"


def iid() -> str:
    """An invitation or introduction id (the connections service mints uuid4 hex)."""
    return uuid.uuid4().hex


def brief(items):
    return [(n["type"], n["actors"], n["object"]) for n in items]


# --- who is notified of what --------------------------------------------------------

def test_an_invitation_notifies_the_invitee_with_its_message(bus, inbox_of, unique):
    ada, grace, invitation = unique("ada"), unique("grace"), iid()
    bus.handled(bus.publish("connections", "invitation.sent", invitation_id=invitation, inviter=ada, invitee=grace,
                            message="We met at the conference", sent_at=at()))

    [n] = inbox_of(grace)
    assert (n["type"], n["actors"], n["actor_count"], n["object"], n["read"]) == \
        ("invitation_received", [ada], 1, invitation, False)
    assert n["text"] == "We met at the conference"
    assert n["summary"] == f'{ada} invited you to connect: "We met at the conference"'
    assert inbox_of(ada) == []


def test_an_accepted_invitation_notifies_the_inviter(bus, inbox_of, unique):
    ada, grace, invitation = unique("ada"), unique("grace"), iid()
    bus.handled(bus.publish("connections", "invitation.accepted", invitation_id=invitation, inviter=ada,
                            invitee=grace, at=at()))

    assert brief(inbox_of(ada)) == [("invitation_accepted", [grace], invitation)]
    assert inbox_of(grace) == []


def test_an_ignored_invitation_notifies_no_one(bus, inbox_of, unique):
    ada, grace = unique("ada"), unique("grace")
    bus.handled(bus.publish("connections", "invitation.ignored", invitation_id=iid(), inviter=ada, invitee=grace,
                            at=at()))

    assert inbox_of(ada) == [] and inbox_of(grace) == []


def test_removing_a_connection_notifies_neither_side(bus, inbox_of, unique):
    ada, grace = unique("ada"), unique("grace")
    bus.handled(
        bus.publish("connections", "connection.removed", remover=ada, other=grace, at=at()),
        bus.publish("follows", "follow.removed", follower=ada, followee=grace, reason="connection_removed", at=at()),
        bus.publish("follows", "follow.removed", follower=grace, followee=ada, reason="connection_removed", at=at()),
    )

    assert inbox_of(ada) == [] and inbox_of(grace) == []


def test_the_automatic_follow_of_a_new_connection_is_silent(bus, inbox_of, unique):
    ada, grace = unique("ada"), unique("grace")
    bus.handled(bus.publish("follows", "follow.created", follower=ada, followee=grace, reason="connection",
                            since=at()))

    assert inbox_of(grace) == []


def test_introductions_notify_the_introducer_then_the_target_and_the_requester(bus, inbox_of, unique):
    ada, linus, grace = unique("ada"), unique("linus"), unique("grace")
    intro = iid()
    bus.handled(
        bus.publish("connections", "introduction.requested", introduction_id=intro, requester=ada, target=grace,
                    via=linus, note="Grace knows compilers", at=at()),
        bus.publish("connections", "introduction.forwarded", introduction_id=intro, requester=ada, target=grace,
                    via=linus, at=at(1)),
    )

    [asked] = inbox_of(linus)
    assert brief([asked]) == [("introduction_requested", [ada], intro)]
    assert asked["summary"] == f'{ada} asks you to introduce them to {grace}: "Grace knows compilers"'
    [forwarded] = inbox_of(grace)
    assert brief([forwarded]) == [("introduction_forwarded", [linus], intro)]
    assert forwarded["summary"] == f"{linus} introduced you to {ada}"
    [outcome] = inbox_of(ada)  # the requester is told the outcome
    assert brief([outcome]) == [("introduction_forwarded", [linus], intro)]
    assert outcome["summary"] == f"{linus} introduced you to {grace}"


def test_an_endorsement_notifies_the_endorsee(bus, inbox_of, unique):
    ada, grace = unique("ada"), unique("grace")
    bus.handled(bus.publish("connections", "endorsement.added", endorser=ada, endorsee=grace, skill="Compilers",
                            at=at()))

    [n] = inbox_of(grace)
    assert (n["type"], n["actors"], n["object"], n["summary"]) == \
        ("endorsement_received", [ada], "Compilers", f"{ada} endorsed you for Compilers")


def test_a_like_a_comment_and_a_reshare_notify_the_post_author(bus, inbox_of, unique):
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    post = pid()
    bus.handled(
        bus.publish("feed", "post.liked", post_id=post, author=grace, actor=ada, at=at()),
        bus.publish("feed", "comment.added", comment_id="c1", post_id=post, author=grace, commenter=linus,
                    excerpt="Great read", at=at(1)),
        bus.publish("feed", "post.created", post_id=pid(), author=ada, visibility="public", created_at=at(2),
                    reshare_of=post, reshare_of_author=grace, excerpt=""),
    )

    items = inbox_of(grace)
    assert brief(items) == [("post_reshared", [ada], post), ("post_commented", [linus], post),
                            ("post_liked", [ada], post)]
    assert [n["summary"] for n in items] == [f"{ada} reshared your post", f'{linus} commented on your post: '
                                             f'"Great read"', f"{ada} liked your post"]


def test_one_s_own_like_comment_or_reshare_notifies_no_one(bus, inbox_of, unique):
    grace = unique("grace")
    post = pid()
    bus.handled(
        bus.publish("feed", "post.liked", post_id=post, author=grace, actor=grace, at=at()),
        bus.publish("feed", "comment.added", comment_id="c1", post_id=post, author=grace, commenter=grace, at=at()),
        bus.publish("feed", "post.created", post_id=pid(), author=grace, visibility="public", created_at=at(),
                    reshare_of=post, reshare_of_author=grace),
    )

    assert inbox_of(grace) == []


def test_a_new_post_alerts_only_followers_who_switched_alerts_on(bus, inbox_of, unique):
    grace, on, off, switched_off, gone = (unique(n) for n in ("grace", "on", "off", "switched", "gone"))
    bus.handled(
        bus.publish("follows", "follow.created", follower=on, followee=grace, reason="explicit", notify_on_post=True,
                    since=at()),
        bus.publish("follows", "follow.created", follower=off, followee=grace, reason="explicit", since=at()),
        bus.publish("follows", "follow.created", follower=switched_off, followee=grace, reason="connection",
                    notify_on_post=True, since=at()),
        bus.publish("follows", "follow.updated", follower=switched_off, followee=grace, notify_on_post=False,
                    at=at(1)),
        bus.publish("follows", "follow.created", follower=gone, followee=grace, reason="explicit",
                    notify_on_post=True, since=at()),
        bus.publish("follows", "follow.removed", follower=gone, followee=grace, reason="explicit", at=at(1)),
    )
    post = pid()
    bus.handled(bus.publish("feed", "post.created", post_id=post, author=grace, visibility="public",
                            created_at=at(2), excerpt="Shipping day"))

    [n] = inbox_of(on)
    assert (n["type"], n["actors"], n["object"], n["summary"]) == \
        ("new_post", [grace], post, f'{grace} posted: "Shipping day"')
    assert inbox_of(off) == [] and inbox_of(switched_off) == [] and inbox_of(gone) == []


def test_a_connections_only_post_alerts_only_followers_who_are_connections(bus, inbox_of, unique):
    grace, friend, stranger, former = unique("grace"), unique("friend"), unique("stranger"), unique("former")
    records = []
    for member in (friend, stranger, former):
        records.append(bus.publish("follows", "follow.created", follower=member, followee=grace, reason="explicit",
                                   notify_on_post=True, since=at()))
    for member in (friend, former):
        records.append(bus.publish("connections", "invitation.accepted", invitation_id=iid(), inviter=grace,
                                   invitee=member, at=at()))
    records.append(bus.publish("connections", "connection.removed", remover=former, other=grace, at=at(1)))
    bus.handled(*records)
    post = pid()
    bus.handled(bus.publish("feed", "post.created", post_id=post, author=grace, visibility="connections",
                            created_at=at(2)))

    assert brief(inbox_of(friend)) == [("new_post", [grace], post)]
    assert inbox_of(stranger) == [] and inbox_of(former) == []


# --- grouping -------------------------------------------------------------------------

def test_new_followers_within_the_window_group_into_one_notification(bus, inbox_of, unique):
    grace = unique("grace")
    followers = [unique(f"f{i}") for i in range(4)]
    bus.handled(*[bus.publish("follows", "follow.created", follower=f, followee=grace, reason="explicit",
                              since=at(i)) for i, f in enumerate(followers)])

    [n] = inbox_of(grace)
    assert n["type"] == "new_follower" and n["actor_count"] == 4
    assert n["actors"] == list(reversed(followers))  # the most recent first
    assert n["summary"] == f"{followers[-1]} and 3 others started following you"


def test_likes_of_one_post_group_and_the_group_moves_to_the_top_when_it_grows(bus, inbox_of, unread_count, apps,
                                                                                auth, unique):
    grace, ada, linus, alan = unique("grace"), unique("ada"), unique("linus"), unique("alan")
    liked, commented = pid(), pid()
    bus.handled(
        bus.publish("feed", "post.liked", post_id=liked, author=grace, actor=ada, at=at(0)),
        bus.publish("feed", "comment.added", comment_id="c1", post_id=commented, author=grace, commenter=linus,
                    at=at(1)),
    )
    assert brief(inbox_of(grace)) == [("post_commented", [linus], commented), ("post_liked", [ada], liked)]
    apps("notifications").post("/v1/notifications/read-all", headers=auth(grace))

    bus.handled(bus.publish("feed", "post.liked", post_id=liked, author=grace, actor=alan, at=at(2)))

    items = inbox_of(grace)
    assert brief(items) == [("post_liked", [alan, ada], liked), ("post_commented", [linus], commented)]
    assert items[0]["summary"] == f"{alan} and {ada} liked your post"
    assert (items[0]["read"], items[1]["read"]) == (False, True)  # grown: news again
    assert unread_count(grace) == 1


def test_a_like_outside_the_window_starts_a_new_notification(bus, inbox_of, unique):
    grace, ada, linus = unique("grace"), unique("ada"), unique("linus")
    post = pid()
    bus.handled(
        bus.publish("feed", "post.liked", post_id=post, author=grace, actor=ada, at=at(-25 * HOUR_MS)),
        bus.publish("feed", "post.liked", post_id=post, author=grace, actor=linus, at=at()),
    )

    assert brief(inbox_of(grace)) == [("post_liked", [linus], post), ("post_liked", [ada], post)]


def test_liking_again_after_an_unlike_does_not_count_twice(bus, inbox_of, unique):
    grace, ada = unique("grace"), unique("ada")
    post = pid()
    bus.handled(
        bus.publish("feed", "post.liked", post_id=post, author=grace, actor=ada, at=at(0)),
        bus.publish("feed", "post.unliked", post_id=post, author=grace, actor=ada, at=at(1)),
        bus.publish("feed", "post.liked", post_id=post, author=grace, actor=ada, at=at(2)),
    )

    [n] = inbox_of(grace)
    assert (n["actors"], n["actor_count"]) == ([ada], 1)  # the unlike did not retract either


# --- idempotence --------------------------------------------------------------------

def test_an_event_delivered_twice_is_one_notification_counted_once(bus, inbox_of, unread_count, unique):
    grace, ada, linus = unique("grace"), unique("ada"), unique("linus")
    post = pid()
    topic = bus.settings.topic("feed.events")
    like = new_event("feed", "post.liked", {"post_id": post, "author": grace, "actor": ada, "at": at()})
    invite = new_event("connections", "invitation.sent", {"invitation_id": "9" * 32, "inviter": linus, "invitee": grace,
                                                           "sent_at": at()})
    records = []
    for _ in range(2):
        records.append(bus.producer.send(topic, key=like.key.encode(), value=encode(like)).get(10))
        records.append(bus.producer.send(bus.settings.topic("connections.events"), key=invite.key.encode(),
                                         value=encode(invite)).get(10))
    bus.handled(*records)

    assert sorted(brief(inbox_of(grace))) == [("invitation_received", [linus], "9" * 32), ("post_liked", [ada], post)]
    assert [n["actor_count"] for n in inbox_of(grace)] == [1, 1]
    assert unread_count(grace) == 2


# --- mute -----------------------------------------------------------------------------

def test_a_muted_type_is_not_stored_even_after_unmuting(bus, apps, auth, inbox_of, unique):
    grace, ada = unique("grace"), unique("ada")
    client, headers = apps("notifications"), auth(grace)
    assert client.get("/v1/preferences", headers=headers).json == {"muted_types": []}
    response = client.patch("/v1/preferences", headers=headers, json={"muted_types": ["post_liked", "new_follower"]})
    assert response.status_code == 200
    assert response.json == {"muted_types": ["new_follower", "post_liked"]}
    post = pid()

    bus.handled(
        bus.publish("feed", "post.liked", post_id=post, author=grace, actor=ada, at=at()),
        bus.publish("feed", "comment.added", comment_id="c1", post_id=post, author=grace, commenter=ada, at=at(1)),
    )
    assert brief(inbox_of(grace)) == [("post_commented", [ada], post)]

    assert client.patch("/v1/preferences", headers=headers, json={"muted_types": []}).json == {"muted_types": []}
    assert brief(inbox_of(grace)) == [("post_commented", [ada], post)]


@pytest.mark.parametrize("body, field", [
    ({"muted_types": ["post_liked", "telepathy"]}, "muted_types"),
    ({"muted_types": "post_liked"}, "muted_types"),
    ({}, "muted_types"),
    ({"muted_types": [], "sound": "on"}, "sound"),
])
def test_unknown_types_and_fields_in_preferences_are_refused(apps, auth, unique, body, field):
    response = apps("notifications").patch("/v1/preferences", headers=auth(unique("grace")), json=body)

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    # An error inside a list names the item: "muted_types.1".
    assert any(name.split(".")[0] == field for name in response.json["errors"])


# --- read state ---------------------------------------------------------------------

def test_unread_count_follows_mark_one_read_and_mark_all_read(bus, apps, auth, inbox_of, unread_count, unique):
    grace, members = unique("grace"), [unique(f"m{i}") for i in range(3)]
    bus.handled(*[bus.publish("connections", "endorsement.added", endorser=m, endorsee=grace, skill=f"s{i}",
                              at=at(i)) for i, m in enumerate(members)])
    client, headers = apps("notifications"), auth(grace)
    assert unread_count(grace) == 3
    newest = inbox_of(grace)[0]

    assert client.post(f"/v1/notifications/{newest['id']}/read", headers=headers).status_code == 204
    assert client.post(f"/v1/notifications/{newest['id']}/read", headers=headers).status_code == 204  # idempotent
    assert unread_count(grace) == 2
    assert [n["read"] for n in inbox_of(grace)] == [True, False, False]
    assert [n["object"] for n in inbox_of(grace, unread="true")] == ["s1", "s0"]

    assert client.post("/v1/notifications/read-all", headers=headers).status_code == 204
    assert unread_count(grace) == 0
    assert inbox_of(grace, unread="true") == []
    assert [n["read"] for n in inbox_of(grace)] == [True, True, True]


def test_someone_else_s_notification_cannot_be_marked_read(bus, apps, auth, unread_count, inbox_of, unique):
    grace, ada = unique("grace"), unique("ada")
    bus.handled(bus.publish("connections", "endorsement.added", endorser=ada, endorsee=grace, skill="Go", at=at()))
    [n] = inbox_of(grace)

    response = apps("notifications").post(f"/v1/notifications/{n['id']}/read", headers=auth(ada))

    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.json["code"] == "notification_not_found"
    assert unread_count(grace) == 1


def test_pages_go_newest_first_with_a_cursor(bus, inbox_of, apps, auth, unique):
    grace = unique("grace")
    bus.handled(*[bus.publish("connections", "endorsement.added", endorser=unique(f"m{i}"), endorsee=grace,
                              skill=f"s{i}", at=at(i)) for i in range(5)])
    client, headers = apps("notifications"), auth(grace)

    first = client.get("/v1/notifications?limit=2", headers=headers).json
    second = client.get(f"/v1/notifications?limit=2&cursor={first['next_cursor']}", headers=headers).json
    third = client.get(f"/v1/notifications?limit=2&cursor={second['next_cursor']}", headers=headers).json

    assert [n["object"] for n in first["items"] + second["items"] + third["items"]] == ["s4", "s3", "s2", "s1", "s0"]
    assert third["next_cursor"] is None
    assert set(first["items"][0]) == {"id", "type", "actors", "actor_count", "object", "summary", "text",
                                      "created_at", "read"}


def test_at_most_the_cap_is_kept_and_the_oldest_go(settings, apps, auth, inbox_of, unread_count, unique):
    """The cap is a setting (1,000); the same rule is checked here with a cap of 3."""
    grace = unique("grace")
    store = store_client.connect(settings.store_url("notifications"))
    # Grace's inbox keys share one slot: a transaction on the node serving it (a cluster's own
    # pipeline runs no script).
    node = node_of(store, keys.notes(grace))
    # notify also writes the actor's footprint (the actor's slot): actors of grace's slot keep
    # each notification one transaction on one node.
    actors = [a for a in (f"m{i}-{grace}" for i in range(10_000)) if keys.shard(a) == keys.shard(grace)][:6]
    base = now_ms()
    for i in range(5):
        with node.pipeline(transaction=True) as tx:
            inbox.notify(tx, grace, f"n{i}", "post_liked", actors[i], f"post{i}", base + i, cap=3)
            tx.execute()
    # A grown group counts as recent activity: post0's group is gone, so this is a new notification.
    with node.pipeline(transaction=True) as tx:
        inbox.notify(tx, grace, "n9", "post_liked", actors[5], "post3", base + 9, cap=3)
        tx.execute()

    assert [n["object"] for n in inbox_of(grace)] == ["post3", "post4", "post2"]
    assert [n["actor_count"] for n in inbox_of(grace)] == [2, 1, 1]
    assert unread_count(grace) == 3
    assert store.hmget(keys.notes(grace), ["n0", "n1"]) == [None, None]
    assert not [entry for entry in store.zrange(keys.actors(grace), 0, -1) if entry.startswith(("n0|", "n1|"))]


# --- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("query, code, field", [
    ("limit=0", "validation_failed", "limit"), ("limit=abc", "validation_failed", "limit"),
    ("cursor=not-a-cursor", "invalid_cursor", "cursor"), ("unread=maybe", "validation_failed", "unread"),
])
def test_bad_queries_are_422_naming_the_argument(apps, auth, unique, query, code, field):
    response = apps("notifications").get(f"/v1/notifications?{query}", headers=auth(unique("grace")))

    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.json["code"] == code
    assert list(response.json["errors"]) == [field]


def test_notifications_need_a_token(apps):
    response = apps("notifications").get("/v1/notifications/unread-count")

    assert response.status_code == 401
    assert response.content_type == "application/problem+json"


# --- replicas ordered by versions, content as of the post -----------------------------

def test_an_older_version_of_a_pairs_change_arriving_late_alerts_no_ex_connection(bus, inbox_of, unique):
    """A copy of an older change of the pair (a relay that published twice, a replay) after the
    removal: the replica holds the newer version, so the member stays a former connection."""
    grace, former = unique("grace"), unique("former")
    bus.handled(
        bus.publish("follows", "follow.created", follower=former, followee=grace, reason="explicit",
                    notify_on_post=True, since=at()),
        bus.publish("connections", "connection.removed", remover=former, other=grace, at=at(), version=2),
        bus.publish("connections", "invitation.accepted", invitation_id=iid(), inviter=grace, invitee=former,
                    at=at(1), version=1),
    )
    bus.handled(bus.publish("feed", "post.created", post_id=pid(), author=grace, visibility="connections",
                            created_at=at(2), excerpt="Only for connections"))

    assert [n for n in inbox_of(former) if n["type"] == "new_post"] == []


def test_an_older_block_version_arriving_late_changes_nothing(bus, inbox_of, unique):
    """A block (version 1), lifted, then a connection made (version 2): the block's event
    reaching the replica after the connection leaves the member connected."""
    grace, friend = unique("grace"), unique("friend")
    bus.handled(
        bus.publish("follows", "follow.created", follower=friend, followee=grace, reason="explicit",
                    notify_on_post=True, since=at()),
        bus.publish("connections", "invitation.accepted", invitation_id=iid(), inviter=grace, invitee=friend,
                    at=at(1), version=2),
        bus.publish("connections", "block.added", blocker=grace, blocked=friend, at=at(), version=1),
    )
    post = pid()
    bus.handled(bus.publish("feed", "post.created", post_id=post, author=grace, visibility="connections",
                            created_at=at(2), excerpt="Only for connections"))

    assert [n["object"] for n in inbox_of(friend) if n["type"] == "new_post"] == [post]


def test_an_older_version_of_a_follows_change_arriving_late_leaves_post_alerts_as_they_are(bus, inbox_of, unique):
    grace, fan = unique("grace"), unique("fan")
    bus.handled(
        bus.publish("follows", "follow.updated", follower=fan, followee=grace, notify_on_post=False, at=at(),
                    version=2),
        bus.publish("follows", "follow.created", follower=fan, followee=grace, reason="connection",
                    notify_on_post=True, since=at(1), version=1),
    )
    bus.handled(bus.publish("feed", "post.created", post_id=pid(), author=grace, visibility="public",
                            created_at=at(2), excerpt="Hello"))

    assert inbox_of(fan) == []


def test_a_connections_only_post_that_overtakes_the_removal_before_it_alerts_no_ex_connection(
        bus, inbox_of, unique, apps, auth, workers, settings):
    """connections.events and feed.events race: the post, stored after the feed learnt of the
    removal, reaches the notifications worker before the removal does. The post's event says
    whom the feed knew to be no longer connected, so the excerpt reaches only connections."""
    ada, grace, friend = unique("ada"), unique("grace"), unique("friend")
    versions = {grace: next_version(), friend: next_version()}
    accepted = {m: dict(invitation_id=iid(), inviter=ada, invitee=m, at=at(), version=v) for m, v in versions.items()}
    removal = dict(remover=ada, other=grace, at=at(1), version=versions[grace] + 1000)
    # The notifications worker (its own namespace) knows both connections and the alerts...
    bus.handled(*[bus.publish("follows", "follow.created", follower=m, followee=ada, reason="explicit",
                              notify_on_post=True, since=at()) for m in (grace, friend)],
                *[bus.publish("connections", "invitation.accepted", **accepted[m]) for m in (grace, friend)])
    # ...while the feed worker has also applied the removal.
    workers("feed")
    publisher = EventPublisher(settings)
    try:
        publisher(*[new_event("connections", "invitation.accepted", accepted[m]) for m in (grace, friend)],
                  new_event("connections", "connection.removed", removal))
    finally:
        publisher.close()
    feed_store = store_client.connect(settings.store_url("feed"))
    eventually(lambda: feed_store.zscore(feed_keys.disconnections(ada), grace) is not None,
               message="the feed applied the removal")

    made = apps("feed").post("/v1/posts", json={"text": "Just between us", "visibility": "connections"},
                             headers=auth(ada))
    assert made.status_code == 201, made.json
    post_id = made.json["id"]
    [post] = [e for e in read_topic(settings, "feed.events", lambda evs: any(
        e.name == "post.created" and e.data["post_id"] == post_id for e in evs))
        if e.name == "post.created" and e.data["post_id"] == post_id]
    assert post.data["disconnected"] == [{"member": grace, "version": removal["version"]}]
    # The post overtakes the removal at the notifications worker.
    bus.handled(bus.producer.send(bus.settings.topic("feed.events"), key=post.key.encode(),
                                  value=encode(post)).get(10))

    assert brief(inbox_of(friend)) == [("new_post", [ada], post_id)]
    assert inbox_of(friend)[0]["text"] == "Just between us"
    assert [n for n in inbox_of(grace) if n["type"] == "new_post"] == []
    # The removal arriving later changes nothing more.
    bus.handled(bus.publish("connections", "connection.removed", **removal))
    assert [n for n in inbox_of(grace) if n["type"] == "new_post"] == []


def test_a_900_kb_note_is_poison_and_goes_to_the_dlq_instead_of_an_inbox(bus, inbox_of, unique):
    ada, linus, grace = unique("ada"), unique("linus"), unique("grace")
    event = new_event("connections", "introduction.requested", {
        "introduction_id": iid(), "requester": ada, "target": grace, "via": linus, "note": "short", "at": at()})
    forged = json.loads(encode(event))
    forged["data"]["note"] = "x" * 900_000
    bus.handled(bus.producer.send(bus.settings.topic("connections.events"), key=event.key.encode(),
                                  value=json.dumps(forged).encode()).get(10))

    dead = read_topic(bus.settings, "connections.events.dlq", lambda records: any(
        r.key == event.key.encode() for r in records), raw=True)
    [reason] = [dict(r.headers)["dlq.reason"].decode() for r in dead if r.key == event.key.encode()]
    assert "note" in reason
    assert inbox_of(linus) == []
