"""Bytes per member, per connection, per follow edge, per post and per timeline entry, measured
on the single-node stores for docs/capacity.md.

N members, each connected to exactly ``--degree`` others (a ring lattice: member i to the
``degree / 2`` next and previous ones), are loaded through the services' own code:

- connections store: ``services.connections.store.load_connections`` (the bulk loader: both
  sides' sorted sets and projections, one pair record per pair);
- follows store: every connection followed both ways (the automatic follow), through the
  FOLLOW script (the follower's side) and PROJECT_FOLLOWER (the followee's), plus the
  replica of the connection (the set, the pair version and its footprint, as the connections
  handler keeps them);
- feed store: the audience replica, FOLLOW_SIDE on both sides of each follow and PAIR_SIDE on
  both sides of each connection; posts through the feed API (``POST /v1/posts``);
- cache: a timeline per member filled to ``timeline_cap`` entries through FAN_OUT;
- member replicas: ``shared.members.register_many`` in each of the five services keeping one;
- notifications store: the replica of each connection (``audience.connect``: both members'
  sides) and, for ``--inboxes`` members, an inbox filled through ``inbox.notify`` (the NOTIFY
  script, as the inbox consumer calls it) with 20 events a day over 70 days, from the member's
  connections: 10 post alerts (``new_post``, an excerpt of about 100 characters), 4 likes of 2 of their
  posts (``post_liked``, grouped per post), a comment (an excerpt of about 80 characters), 2 explicit
  follows (``new_follower``, one group a day), an invitation (a message of about 80 characters every
  other day), an accepted invitation and an endorsement: 1,190 notifications, of which the
  cap (``notification_cap``) keeps the newest;
- messaging store: the replica of each connection (``network.apply``: the pair record and both
  footprints), then ``--conversations`` direct conversations between connections with
  ``--messages`` messages of about 80 characters each, sent in turn by the two members through
  ``conversations._send`` (the SEND script) and projected onto both members' lists and live
  streams through ``inbox.project_message`` (PROJECT), as the worker does;
- profiles store: every member's profile through the profiles API (``PUT /v1/profile``: a name,
  a headline, a 300-character summary, two positions, one school and five skills), the replica
  of each connection with the other's search entry (``network.project``: PROJECT_PAIR on both
  sides) and the search index through the worker's ``members.named``. The names are drawn from
  two first and two last names, so that every prefix set of the index holds more than 128
  entries (a skiplist, as every prefix set of a large membership; the index's keys are shared
  by prefix and measured before and after).

Scripts run pipelined by SHA; the outbox streams they append to and the per-member write limits
are left out of the figures (the relay trims the one, the others expire within seconds). Each key is measured with ``MEMORY USAGE key SAMPLES 0``
(every element counted) and summed by kind (the key's third part: ``following``,
``relationship``...), then divided. Member ids are 12 characters.

``INFO memory`` of the stores' Redis and of the cache's is recorded before the load, after it
and after the clean-up (``memory_info``): the allocator's fragmentation as this write history
left it. Every store of the local stack is a database of one Redis process, shared with
whatever else it holds, so the ratios are the process's, not one store's.

Redis keeps a sorted set compact (a listpack) up to 128 entries of at most 64 bytes
(``zset-max-listpack-entries``; hashes up to 512, ``hash-max-listpack-entries``): ``--degree``
must stay above 128 for the per-member sorted sets of a 300-connection network to be encoded as
they are at that size.

    .venv/bin/python -m bench.capacity [--members 1000] [--degree 300] [--posts 2000]
        [--inboxes 100] [--conversations 800] [--messages 20]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
import uuid
from collections import defaultdict
from types import SimpleNamespace

from bench.support import REPLICAS, bench_settings, token_for, write_results
from services.connections import store as connection_keys
from services.feed import store as feed_keys
from services.feed.app import create_app as feed_app
from services.follows import following as follows_following
from services.follows import store as follow_keys
from services.messaging import conversations as messaging_rules
from services.messaging import inbox as messaging_inbox
from services.messaging import network as messaging_network
from services.messaging import store as messaging_keys
from services.notifications import audience as notification_audience
from services.notifications import inbox as notification_inbox
from services.notifications import store as notification_keys
from services.profiles import members as profile_members
from services.profiles import network as profile_network
from services.profiles import search as profile_search
from services.profiles import store as profile_keys
from services.profiles.app import create_app as profiles_app
from shared import members, store_client
from shared.bus.outbox import Outbox
from shared.clock import rfc3339

BATCH = 2_000
DAY_MS = 86_400_000
INFO_FIELDS = ("used_memory", "used_memory_rss", "mem_fragmentation_ratio", "allocator_allocated",
               "allocator_active", "allocator_resident", "allocator_frag_ratio", "allocator_rss_ratio",
               "rss_overhead_ratio", "mem_allocator")


def lattice(n: int, degree: int) -> list[tuple[int, int]]:
    return [(i, (i + d) % n) for i in range(n) for d in range(1, degree // 2 + 1)]


def by_sha(pipe, script, keys: dict, **args) -> None:
    key_list, arg_list = script.pack(keys, args)
    pipe.evalsha(script.sha, len(key_list), *key_list, *arg_list)


class ShaPipe:
    """A pipeline on which a service's ``LuaScript(..., pipe=)`` (an EVAL of its whole source)
    goes as EVALSHA: the same script, without sending its source with every call of a bulk load
    (each script is loaded first)."""

    def __init__(self, pipe):
        self._pipe = pipe

    def eval(self, source, numkeys, *args):
        return self._pipe.evalsha(hashlib.sha1(source.encode()).hexdigest(), numkeys, *args)

    def __getattr__(self, name):
        return getattr(self._pipe, name)


def pipelined(client, items, queue) -> float:
    """Queue ``queue(pipe, item)`` for every item, BATCH at a time; returns the seconds taken."""
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n, item in enumerate(items, start=1):
        queue(pipe, item)
        if n % BATCH == 0:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def measure(client, service: str, run: str) -> dict[str, dict]:
    """``service``'s keys of this run (their names hold the run's member ids), by kind: count and
    bytes (two services may share a database)."""
    kinds: dict[str, dict] = defaultdict(lambda: {"keys": 0, "bytes": 0})
    names = list(client.scan_iter(match=f"{service}:*{run}*", count=10_000))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.execute_command("MEMORY", "USAGE", name, "SAMPLES", "0")
    for name, size in zip(names, pipe.execute()):
        text = name.decode() if isinstance(name, bytes) else name
        kind = text.split(":")[2] if text.count(":") >= 2 else text
        if kind == "outbox" or kind.startswith("bench-"):
            continue  # the outbox streams and the namespaced write limits: transient
        kinds[kind]["keys"] += 1
        kinds[kind]["bytes"] += size or 0
    return dict(sorted(kinds.items()))


def total(kinds: dict, *names: str) -> int:
    return sum(kinds[k]["bytes"] for k in (names or kinds) if k in kinds)

def sized(client, names) -> int:
    """The bytes of the keys ``names`` (``MEMORY USAGE ... SAMPLES 0``; a missing key is 0)."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.execute_command("MEMORY", "USAGE", name, "SAMPLES", "0")
    return sum(size or 0 for size in pipe.execute())


def memory_info(client) -> dict:
    """``INFO memory`` of ``client``'s Redis process: what the allocator holds beside the data."""
    info = client.info("memory")
    return {k: info.get(k) for k in INFO_FIELDS}


def difference(after: dict, before: dict) -> dict:
    """The kinds ``after`` added to ``before`` (keys and bytes)."""
    return {k: {"keys": v["keys"] - before.get(k, {"keys": 0})["keys"],
                "bytes": v["bytes"] - before.get(k, {"bytes": 0})["bytes"]}
            for k, v in after.items() if v != before.get(k)}


def text_of(length: int, words: str) -> str:
    """``length`` characters of ordinary words."""
    return (words * (length // len(words) + 1))[:length].rstrip() + "."


EXCERPT = text_of(100, "Shipping the new search page today, with thanks to the team who made it happen. ")
SHORT = text_of(80, "Good to hear from you, shall we talk about the project on Thursday afternoon? ")


def inbox_events(member: str, others: list[str], start_ms: int, days: int = 70) -> list[tuple]:
    """A member's notifications as the inbox consumer would be given them, oldest first: 20
    events a day (see the module's docstring), from ``others`` (their connections)."""
    events = []
    n = len(others)
    for d in range(days):
        day = start_ms + d * DAY_MS
        own = [f"{member}~{day:x}a", f"{member}~{day:x}b"]  # two of the member's posts that day
        for k in range(20):
            at = day + k * (DAY_MS // 20)
            actor = others[(d * 20 + k) % n]
            text = None
            if k < 10:
                type_, obj, text = "new_post", f"{actor}~{at:x}", EXCERPT
            elif k < 14:
                type_, obj = "post_liked", own[(k - 10) // 2]
            elif k == 14:
                type_, obj, text = "post_commented", own[0], SHORT
            elif k < 17:
                type_, obj = "new_follower", None
            elif k == 17:
                type_, obj, text = "invitation_received", str(uuid.uuid4()), SHORT if d % 2 == 0 else None
            elif k == 18:
                type_, obj = "invitation_accepted", str(uuid.uuid4())
            else:
                type_, obj = "endorsement_received", "Distributed systems"
            events.append((member, str(uuid.uuid4()), type_, actor, obj, at, text))
    return events


def load_notifications(store, settings, run: str, ids: list[str], pairs, neighbours, inboxes: int, at: int):
    """The notifications store: every connection's replica, then ``inboxes`` full inboxes.
    Returns the timings, the kinds before the inboxes, the inboxes' member ids and the events given."""
    for script in (notification_keys.SET_SIDE, notification_keys.NOTIFY):
        store.script_load(script.source)
    timings = {"notifications_replica_s": pipelined(
        store, pairs, lambda p, pair: notification_audience.connect(ShaPipe(p), pair[0], pair[1], 1))}
    before = measure(store, "notifications", run)
    owners = ids[:min(len(ids), inboxes)]
    events = [e for m in owners for e in inbox_events(m, sorted(neighbours[m]), at - 70 * DAY_MS)]

    def notify(pipe, event):
        recipient, nid, type_, actor, obj, when, text = event
        notification_inbox.notify(ShaPipe(pipe), recipient, nid, type_, actor, obj, when, text=text,
                                  window_hours=settings.notification_group_window_hours,
                                  cap=settings.notification_cap)

    timings["notifications_inboxes_s"] = pipelined(store, events, notify)
    return timings, before, owners, len(events)


def load_messaging(store, settings, run: str, ids: list[str], pairs, conversations: int, per_conversation: int):
    """The messaging store: every connection's replica, then ``conversations`` direct
    conversations of ``per_conversation`` messages. Returns the timings, the kinds before the
    conversations, the conversation ids and the messages sent."""
    m = messaging_rules.Messaging(store, settings)
    for script in (messaging_keys.PAIR, messaging_keys.PROJECT, messaging_keys.SEND):
        store.script_load(script.source)
    timings = {"messaging_replica_s": pipelined(
        store, pairs, lambda p, pair: messaging_network.apply(ShaPipe(p), m.keys, pair[0], pair[1], 1,
                                                              connected=True))}
    before = measure(store, "messaging", run)
    n = len(ids)
    per_member = -(-conversations // n)
    chosen = [(ids[i], ids[(i + d) % n]) for d in range(1, per_member + 1) for i in range(n)][:conversations]
    conversation_ids, sent = [], 0
    started = time.perf_counter()
    pipe = ShaPipe(store.pipeline(transaction=False))
    for a, b in chosen:
        cid = messaging_rules.direct_id(a, b)
        conversation_ids.append(cid)
        participants = sorted([a, b])
        for n_sent in range(per_conversation):
            sender = (a, b)[n_sent % 2]
            _, seq, sent_at = messaging_rules._send(m, cid, "direct", participants, sender, SHORT, None, create=True)
            messaging_inbox.project_message(m, pipe, SimpleNamespace(data={
                "conversation_id": cid, "participants": participants, "sender": sender, "seq": seq,
                "version": seq, "sent_at": rfc3339(sent_at)}))  # no receipts: the version is the seq
            sent += 1
        pipe.execute()
    timings["messaging_conversations_s"] = time.perf_counter() - started
    return timings, before, m.keys, conversation_ids, sent


FIRST_NAMES, LAST_NAMES = ("Adelheid", "Bartholomew"), ("Quennell", "Ravensworth")


def profile_of(i: int) -> dict:
    """A profile as a member writes it (``PUT /v1/profile``)."""
    return {
        "name": f"{FIRST_NAMES[i % 2]} {LAST_NAMES[(i // 2) % 2]}",
        "headline": "Senior software engineer at Northwind Traders, building distributed systems",
        "location": "Lisbon, Portugal", "industry": "Software Development",
        "about": text_of(300, "I build and run the systems behind large consumer products: storage, "
                              "messaging and search, with a taste for measuring before changing. "),
        "experience": [
            {"title": "Senior Software Engineer", "organization": "Northwind Traders", "start": "2021-03",
             "description": text_of(120, "Led the move of the order pipeline to an event log and its consumers. ")},
            {"title": "Software Engineer", "organization": "Contoso Ltd", "start": "2016-09", "end": "2021-02"}],
        "education": [{"school": "University of Lisbon", "degree": "MSc", "field": "Computer Science",
                       "start": "2011-09", "end": "2016-07"}],
        "skills": ["Distributed systems", "Python", "Redis", "Kafka", "System design"],
    }


def load_profiles(store, settings, run: str, ids: list[str], pairs):
    """The profiles store: each member's profile through the API, the replica of every
    connection (with the other's search entry) and the search index. Returns the timings, the
    index's keys and entries, and their bytes before the load (the index's keys are by prefix,
    shared with any other member of those names)."""
    keys = profile_keys.Keys(settings.shards)
    api = profiles_app({"TESTING": True}, settings=settings).test_client()
    names = {}
    started = time.perf_counter()
    for i, member in enumerate(ids):
        doc = profile_of(i)
        response = api.put("/v1/profile", json=doc, headers={"Authorization": f"Bearer {token_for(settings, member)}"})
        assert response.status_code == 201, response.get_json()
        names[member] = doc["name"]
    timings = {"profiles_put_s": time.perf_counter() - started}
    index_keys = sorted({keys.names(p) for name in set(names.values()) for p in profile_search.prefixes(name)})
    index_before = sized(store, index_keys)
    for script in (profile_keys.PROJECT_PAIR, profile_keys.MARK_INDEXED):
        store.script_load(script.source)

    def connect(pipe, pair):
        a, b = pair
        sha = ShaPipe(pipe)
        profile_network.project(sha, keys, a, b, 1, "connected", profile_search.entry(names[b], b), pipe=sha)
        profile_network.project(sha, keys, b, a, 1, "connected", profile_search.entry(names[a], a), pipe=sha)

    timings["profiles_replica_s"] = pipelined(store, pairs, connect)
    started = time.perf_counter()
    for member in ids:
        version = int(store.hget(keys.member(member), "version"))
        tx = ShaPipe(store.pipeline(transaction=False))  # keys of many slots: one command each
        profile_members.named(store, tx, keys, member, names[member], version)
        tx.execute()
    timings["profiles_index_s"] = time.perf_counter() - started
    entries = [profile_search.entry(name, member) for member, name in names.items()]
    return timings, index_keys, entries, index_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--degree", type=int, default=300)
    parser.add_argument("--posts", type=int, default=2_000)
    parser.add_argument("--inboxes", type=int, default=100, help="members whose inbox is filled")
    parser.add_argument("--conversations", type=int, default=800)
    parser.add_argument("--messages", type=int, default=20, help="messages per conversation")
    args = parser.parse_args()
    settings = bench_settings()
    run = uuid.uuid4().hex[:5]
    ids = [f"{run}{i:07d}" for i in range(args.members)]
    pairs = [(ids[a], ids[b]) for a, b in lattice(args.members, args.degree)]
    edges = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]  # follower, followee
    at = int(time.time() * 1000)
    stores = {s: store_client.connect(settings.store_url(s), decode_responses=False) for s in REPLICAS}
    cache = store_client.connect(settings.cache_url, decode_responses=False)
    profiles = store_client.connect(settings.store_url("profiles"), decode_responses=True)  # as the service reads it
    memory = {"before_load": {"stores": memory_info(stores["connections"]), "cache": memory_info(cache)}}
    timings = {}
    print(f"{args.members} members, {len(pairs)} connections, {len(edges)} follow edges (run {run})")

    # Member replicas (measured first, alone: every later kind is another service's or kind).
    replica_bytes = {}
    for service in REPLICAS:
        members.register_many(stores[service], service, settings, ids)
        replica_bytes[service] = measure(stores[service], service, run).get("member", {"bytes": 0})["bytes"]

    # connections
    conn = stores["connections"]
    neighbours: dict[str, dict[str, int]] = defaultdict(dict)
    for a, b in pairs:
        neighbours[a][b] = at
        neighbours[b][a] = at
    timings["connections_load_s"] = pipelined(conn, ids, lambda p, m: connection_keys.load_connections(
        p, m, neighbours[m]))

    # follows: both follows of every connection, and the replica of the connection
    fol = stores["follows"]
    for script in (follow_keys.FOLLOW, follow_keys.PROJECT_FOLLOWER):
        fol.script_load(script.source)
    outbox = Outbox("follows", settings)

    def follow(pipe, edge):
        a, b = edge
        by_sha(pipe, follow_keys.FOLLOW, follows_following._follow_keys(outbox, a, b),
               **follows_following.follow_args(outbox, a, b, None, "connection", at))
        by_sha(pipe, follow_keys.PROJECT_FOLLOWER, {"followers": follow_keys.followers(b),
                                                     "versions": follow_keys.followers_version(b)},
               follower=a, version=1, since=at)

    def follows_replica(pipe, edge):
        a, b = edge
        pipe.sadd(follow_keys.paired(a), b)  # the footprint, as services/follows/network.py queues it
        pipe.sadd(follow_keys.connections(a), b)
        pipe.set(follow_keys.pair_version(a, b), 1)

    timings["follows_load_s"] = pipelined(fol, edges, follow) + pipelined(fol, edges, follows_replica)

    # feed: the audience replica, then posts through the API
    feed = stores["feed"]
    for script in (feed_keys.FOLLOW_SIDE, feed_keys.PAIR_SIDE):
        feed.script_load(script.source)

    def audience(pipe, edge):
        a, b = edge
        by_sha(pipe, feed_keys.FOLLOW_SIDE, {"edges": feed_keys.following(a), "version": feed_keys.follow_version(a, b),
                                            "seen": feed_keys.following_seen(a)},
               member=b, score=at, version=1, present="1")
        by_sha(pipe, feed_keys.FOLLOW_SIDE, {"edges": feed_keys.followers(b), "version": feed_keys.follower_version(b, a),
                                            "seen": feed_keys.followers_seen(b)},
               member=a, score=at, version=1, present="1")
        by_sha(pipe, feed_keys.PAIR_SIDE, {"connections": feed_keys.connections(a), "hidden": feed_keys.hidden(a),
                                          "disconnections": feed_keys.disconnections(a),
                                          "version": feed_keys.pair_version(a, b), "paired": feed_keys.paired(a)},
               other=b, change="connect", version=1, at=at, keep=100)

    timings["feed_audience_load_s"] = pipelined(feed, edges, audience)
    before_posts = measure(feed, "feed", run)
    api = feed_app({"TESTING": True}, settings=settings).test_client()
    post_ids = []
    started = time.perf_counter()
    authors = ids[:max(1, args.posts // 10)]
    for n in range(args.posts):
        author = authors[n % len(authors)]
        response = api.post("/v1/posts", json={"text": "A post of about a hundred characters, the length of a "
                                                       "typical short update on a professional network."},
                            headers={"Authorization": f"Bearer {token_for(settings, author)}"})
        assert response.status_code == 201, response.get_json()
        post_ids.append(response.get_json()["id"])
    timings["posts_s"] = time.perf_counter() - started

    # cache: a full timeline for every member, of real post ids
    cache.script_load(feed_keys.FAN_OUT.source)
    cap = settings.timeline_cap
    entries = []
    for n, post_id in enumerate(post_ids[:cap]):
        entries += [at + n, post_id]

    def fill(pipe, member):
        pipe.zadd(feed_keys.timeline(member), {feed_keys.LIVE: "inf"})
        for start in range(0, len(entries), 200):
            by_sha(pipe, feed_keys.FAN_OUT, {"timelines": [feed_keys.timeline(member)]}, cap=cap,
                   entries=entries[start:start + 200])

    timeline_members = ids[:min(len(ids), 500)]
    timings["timelines_s"] = pipelined(cache, timeline_members, fill)

    # notifications, messaging, profiles
    notif = stores["notifications"]
    took, before_inboxes, inbox_owners, inbox_events_given = load_notifications(
        notif, settings, run, ids, pairs, neighbours, args.inboxes, at)
    timings.update(took)
    msg = stores["messaging"]
    took, before_conversations, msg_keys, conversation_ids, messages_sent = load_messaging(
        msg, settings, run, ids, pairs, args.conversations, args.messages)
    timings.update(took)
    took, index_keys, index_entries, index_before = load_profiles(profiles, settings, run, ids, pairs)
    timings.update(took)

    kinds = {"connections": measure(conn, "connections", run), "follows": measure(fol, "follows", run),
             "feed": measure(feed, "feed", run), "cache": measure(cache, "feed", run),
             "notifications": measure(notif, "notifications", run), "messaging": measure(msg, "messaging", run),
             "profiles": measure(profiles, "profiles", run)}
    conversation_records = {"keys": len(conversation_ids),
                            "bytes": sized(msg, [msg_keys.conversation(c) for c in conversation_ids])}
    message_hashes = {"keys": len(conversation_ids),
                      "bytes": sized(msg, [msg_keys.messages(c) for c in conversation_ids])}
    kinds["messaging"]["conversation"] = conversation_records
    kinds["messaging"]["messages"] = message_hashes
    kinds["profiles"]["names"] = {"keys": len(index_keys), "bytes": sized(profiles, index_keys) - index_before}
    memory["after_load"] = {"stores": memory_info(stores["connections"]), "cache": memory_info(cache)}
    posts_kinds = difference(kinds["feed"], before_posts)
    inbox_kinds = difference(kinds["notifications"], before_inboxes)
    list_kinds = difference(kinds["messaging"], before_conversations)
    for kind in ("conversation", "messages"):
        list_kinds.pop(kind, None)
    pipe = notif.pipeline(transaction=False)
    for owner in inbox_owners:
        pipe.zcard(notification_keys.inbox(owner))
        pipe.xlen(notification_keys.live(owner))
    counts = pipe.execute()
    notifications_kept, notification_live_entries = sum(counts[0::2]), sum(counts[1::2])
    pipe = msg.pipeline(transaction=False)
    for member in ids:
        pipe.xlen(msg_keys.live_stream(member))
    message_live_entries = sum(pipe.execute())
    inbox_bytes = total(inbox_kinds)
    notification_live = total(inbox_kinds, "live")
    entries_per_timeline = cache.zcard(feed_keys.timeline(timeline_members[0])) - 1
    c = len(pairs)
    figures = {
        "members": args.members, "degree": args.degree, "connections": c, "follow_edges": len(edges),
        "posts": len(post_ids), "timelines": len(timeline_members), "entries_per_timeline": entries_per_timeline,
        "member_id_chars": len(ids[0]), "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "kinds": kinds, "posts_kinds": posts_kinds,
        "member_replica_bytes_per_member": {s: round(b / args.members, 1) for s, b in replica_bytes.items()},
        "per_connection_bytes": {
            "connections": round((total(kinds["connections"]) - replica_bytes["connections"]) / c, 1),
            # two follow edges and the replica's two sides per connection
            "follows": round((total(kinds["follows"]) - replica_bytes["follows"]) / c, 1),
            "feed_audience": round((total(before_posts) - replica_bytes["feed"]) / c, 1),
            # each member's side of the pair and its version (and their footprints)
            "notifications": round((total(before_inboxes) - replica_bytes["notifications"]) / c, 1),
            # one pair record and each member's footprint entry
            "messaging": round((total(before_conversations) - replica_bytes["messaging"]) / c, 1),
            # each side: the connection, the other's search entry and the pair's version
            "profiles": round(total(kinds["profiles"], "connections", "connection-names", "pair-versions") / c, 1),
        },
        "notifications": {
            "inboxes": len(inbox_owners), "events_given": inbox_events_given, "notification_cap": settings.notification_cap,
            "notifications_kept": notifications_kept, "live_entries": notification_live_entries,
            "kinds": inbox_kinds,
            "per_inbox_bytes": round(inbox_bytes / len(inbox_owners)),
            "per_inbox_bytes_without_live": round((inbox_bytes - notification_live) / len(inbox_owners)),
            "per_notification_bytes": round((inbox_bytes - notification_live) / notifications_kept, 1),
            "per_live_entry_bytes": round(notification_live / notification_live_entries, 1),
        },
        "messaging": {
            "conversations": len(conversation_ids), "messages": messages_sent, "message_chars": len(SHORT),
            "live_entries": message_live_entries, "list_kinds": list_kinds,
            "per_message_bytes": round(message_hashes["bytes"] / messages_sent, 1),
            # the record, and an entry in both members' lists (inbox, entries, unread)
            "per_conversation_bytes": round((conversation_records["bytes"]
                                             + total(list_kinds, "inbox", "entries", "unread")) / len(conversation_ids), 1),
            "per_conversation_record_bytes": round(conversation_records["bytes"] / len(conversation_ids), 1),
            "per_live_entry_bytes": round(total(list_kinds, "live") / message_live_entries, 1),
        },
        "profiles": {
            "profiles": args.members,
            # the member's record (its profile document), what the index keeps of it, its entries in the index
            "per_profile_bytes": round(total(kinds["profiles"], "member", "indexed", "names") / args.members, 1),
            "per_profile_record_bytes": round(total(kinds["profiles"], "member") / args.members, 1),
            "per_profile_index_bytes": round(total(kinds["profiles"], "indexed", "names") / args.members, 1),
            "profile_json_chars": len(json.dumps(profile_of(0), separators=(",", ":"))),
        },
        "per_post_bytes": round(sum(v["bytes"] for v in posts_kinds.values()) / len(post_ids), 1),
        "per_timeline_entry_bytes": round(total(kinds["cache"]) / (len(timeline_members) * entries_per_timeline), 1),
        "per_full_timeline_bytes": round(total(kinds["cache"]) / len(timeline_members)),
    }
    started = time.perf_counter()
    cleanup(list(stores.values()) + [cache, profiles], run, settings.namespace)
    msg.delete(*[msg_keys.conversation(c) for c in conversation_ids], *[msg_keys.messages(c) for c in conversation_ids])
    pipe = profiles.pipeline(transaction=False)
    for key in index_keys:
        pipe.zrem(key, *index_entries)
    pipe.execute()
    timings["cleanup_s"] = time.perf_counter() - started
    memory["after_cleanup"] = {"stores": memory_info(stores["connections"]), "cache": memory_info(cache)}
    figures["timings_s"] = {k: round(v, 2) for k, v in timings.items()}
    figures["memory_info"] = memory
    write_results("capacity", figures)


def cleanup(clients, run: str, namespace: str) -> None:
    """Every key of this run, and the outbox streams of its namespace."""
    for client in clients:
        batch = list(client.scan_iter(match=f"*{run}*", count=10_000))
        batch += list(client.scan_iter(match=f"outbox:{namespace}:*", count=10_000))
        for start in range(0, len(batch), 10_000):
            client.delete(*batch[start:start + 10_000])


if __name__ == "__main__":
    main()
