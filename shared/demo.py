"""``rapport demo``: load a small, realistic network into the running stack, then show what one
member sees — their home feed, notifications and people they may know.

It uses only the public HTTP API of the stack (the ports of ``RAPPORT_<SERVICE>_PORT``,
8001-8005 by default) with tokens it mints itself, as any client would: every member first
registers with ``PUT /v1/profile`` on the profiles service, as a member must before anything
else. The network's shape
comes from ``--seed``; member ids end in a run tag (``--tag``, new for every run by default),
so running it twice adds a second network beside the first instead of colliding with it.
"""
from __future__ import annotations

import http.client
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

from shared.auth import mint_token
from shared.members import profiles_base_url
from shared.settings import Settings

FIRST = ("ada grace linus margaret alan barbara donald frances edsger radia ken dennis john katherine tim "
         "sophie hedy edsger annie guido bjarne james anita leslie yukihiro shafi silvio judea adele rasmus "
         "joan ivan mary carol niklaus peter tony fran lynn susan").split()
LAST = ("lovelace hopper torvalds hamilton turing liskov knuth allen dijkstra perlman thompson ritchie backus "
        "johnson berners wilson lamarr shannon easley rossum stroustrup gosling borg lamport matsumoto "
        "goldwasser micali pearl goldberg lerdorf clarke sutherland keller wirth norvig hoare rosen conway "
        "ross ellis").split()
COMPANIES = ("Analytical Engines", "Northwind", "Initech", "Globex", "Hooli", "Umbrella Data", "Stark Systems",
             "Wayne Analytics", "Acme Cloud", "Cyberdyne", "Soylent Labs", "Tyrell Compute")
TOPICS = ("distributed systems", "hiring", "Kafka", "Redis", "career growth", "remote work", "mentoring",
          "open source", "product management", "data engineering", "security", "Python")
POSTS = ("Three things I learned about {topic} this quarter — a thread.",
         "We are hiring at {company}! If {topic} is your thing, my inbox is open.",
         "Hot take: most {topic} problems are really naming problems.",
         "Wrapped up a great week at {company}. Proud of the team's work on {topic}.",
         "Reading list for anyone getting into {topic}, collected over ten years.",
         "Slides from my talk on {topic} are up. Questions welcome.",
         "What is the one book on {topic} you would recommend to a new graduate?")
PRIVATE_POSTS = ("Between us: {company} is reorganising around {topic}. Happy to chat.",
                 "Looking for a new role in {topic} — quietly. Leads appreciated.",
                 "Draft of my {topic} essay, for my network only. Tear it apart.")
COMMENTS = ("Great point.", "Thanks for sharing!", "Couldn't agree more.", "Saving this for later.",
            "We saw the same at our place.", "Congratulations to the whole team!", "Would love to hear more.")
INVITE_MESSAGES = (None, None, "Great meeting you at the meetup!", "Loved your talk — let's connect.",
                   "We worked together at {company}, would be glad to connect.")


@dataclass
class Member:
    id: str
    company: str
    connections: set[str] = field(default_factory=set)
    followers: set[str] = field(default_factory=set)


@dataclass
class Plan:
    """The whole network, decided up front from the seed, before any request."""

    members: dict[str, Member]
    featured: str
    invitations: list[tuple[str, str, str | None]]  # inviter, invitee, message: accepted
    pending: list[tuple[str, str, str | None]]  # left pending, for the featured member to see
    follows: list[tuple[str, str, bool]]  # follower, followee, post alerts
    posts: list[tuple[str, str, str]]  # author, text, visibility
    reshares: list[tuple[str, int]]  # who, index of the post in ``posts``
    likes: list[tuple[str, int]]
    comments: list[tuple[str, int, str]]


def plan_network(size: int, seed: int, tag: str) -> Plan:
    """A deterministic network of ``size`` members: colleagues connected, influencers followed."""
    rng = random.Random(seed)
    names = [f"{f}.{l}" for f in FIRST for l in LAST]
    rng.shuffle(names)
    names.remove("ada.lovelace")
    names = ["ada.lovelace", *names[:size - 1]]
    members = {f"{n}-{tag}": Member(f"{n}-{tag}", rng.choice(COMPANIES)) for n in names}
    ids = list(members)
    featured, influencers = ids[0], ids[1:6]
    pairs: set[frozenset] = set()
    invitations: list[tuple[str, str, str | None]] = []

    def message(inviter: str) -> str | None:
        text = rng.choice(INVITE_MESSAGES)
        return text.format(company=members[inviter].company) if text else None

    def connect(a: str, b: str) -> None:
        if a == b or frozenset((a, b)) in pairs:
            return
        pairs.add(frozenset((a, b)))
        invitations.append((a, b, message(a)))
        members[a].connections.add(b)
        members[b].connections.add(a)

    by_company: dict[str, list[str]] = {}
    for m in ids:
        by_company.setdefault(members[m].company, []).append(m)
    # The featured member: a dozen connections, mostly colleagues (so people they may know
    # share several of them), half invited by them, half inviting them.
    colleagues = [m for m in by_company[members[featured].company] if m not in influencers and m != featured]
    chosen = rng.sample(colleagues, min(8, len(colleagues)))
    chosen += rng.sample([m for m in ids[6:] if m not in chosen], 12 - len(chosen))
    for i, other in enumerate(chosen):
        connect(featured, other) if i % 2 else connect(other, featured)
    # Everyone else: mostly colleagues, some from elsewhere.
    for m in ids[1:]:
        for _ in range(rng.randint(1, 4)):
            pool = by_company[members[m].company] if rng.random() < 0.7 else ids
            connect(m, rng.choice(pool))
    strangers = [m for m in ids[6:] if m not in members[featured].connections]
    pending = [(m, featured, message(m)) for m in rng.sample(strangers, min(3, len(strangers)))]
    for inviter, _, _ in pending:
        pairs.add(frozenset((inviter, featured)))

    follows: list[tuple[str, str, bool]] = []
    for m in ids:
        for star in rng.sample(influencers, rng.randint(1, 3)):
            if star != m and star not in members[m].connections:
                follows.append((m, star, rng.random() < 0.1))
                members[star].followers.add(m)
    for m in rng.sample(ids[6:], max(1, size // 12)):
        if featured not in members[m].connections and (m, featured) not in [(p[0], p[1]) for p in pending]:
            follows.append((m, featured, rng.random() < 0.3))
            members[featured].followers.add(m)
    for m in members:  # connections follow each other automatically
        members[m].followers |= members[m].connections

    posts: list[tuple[str, str, str]] = []
    for m in ids:
        count = 3 if m in influencers else 2 if m == featured else (1 if rng.random() < 0.6 else 0)
        for _ in range(count):
            private = m not in influencers and rng.random() < 0.25
            text = rng.choice(PRIVATE_POSTS if private else POSTS).format(topic=rng.choice(TOPICS),
                                                                        company=members[m].company)
            posts.append((m, text, "connections" if private else "public"))

    def audience(index: int) -> list[str]:
        author, _, visibility = posts[index]
        seen = members[author].connections if visibility == "connections" else members[author].followers
        return sorted(seen)

    likes, comments, reshares = [], [], []
    for index, (author, _, visibility) in enumerate(posts):
        crowd = audience(index)
        if not crowd:
            continue
        least = 4 if author == featured else 0
        for liker in rng.sample(crowd, min(len(crowd), rng.randint(least, 8))):
            likes.append((liker, index))
        for commenter in rng.sample(crowd, min(len(crowd), 2 if author == featured else rng.randint(0, 2))):
            comments.append((commenter, index, rng.choice(COMMENTS)))
        if visibility == "public" and rng.random() < 0.15:
            reshares.append((rng.choice(crowd), index))
    return Plan(members, featured, invitations, pending, follows, posts, reshares, likes, comments)


class Api:
    """The stack's public HTTP API, one keep-alive connection per thread and service."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1"):
        self.settings = settings
        self.host = host
        self._local = threading.local()
        self._tokens: dict[str, str] = {}

    def port(self, service: str) -> int:
        if service in self.settings.ports:
            return self.settings.ports[service]
        return urlsplit(profiles_base_url(self.settings)).port or 80  # "profiles", before it is in the settings

    def _connection(self, service: str) -> http.client.HTTPConnection:
        pool = self._local.__dict__.setdefault("pool", {})
        if service not in pool:
            pool[service] = http.client.HTTPConnection(self.host, self.port(service), timeout=15)
        return pool[service]

    def _token(self, member: str) -> str:
        if member not in self._tokens:
            self._tokens[member] = mint_token(member, self.settings.jwt_secret)
        return self._tokens[member]

    def call(self, member: str, method: str, service: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self._token(member)}"}
        payload = None
        if body is not None:
            payload, headers["Content-Type"] = json.dumps(body), "application/json"
        for attempt in (1, 2):  # a kept-alive connection the server has closed meanwhile: once more
            conn = self._connection(service)
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                return response.status, (json.loads(raw) if raw else {})
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.pool.pop(service, None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Tally:
    """How many calls of each step answered what, for the summary line."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, dict[int, int]] = {}

    def add(self, step: str, status: int) -> None:
        with self.lock:
            self.counts.setdefault(step, {}).setdefault(status, 0)
            self.counts[step][status] += 1

    def ok(self, step: str) -> int:
        return sum(n for status, n in self.counts.get(step, {}).items() if status < 300)


def load(api: Api, plan: Plan, threads: int = 16) -> tuple[Tally, dict[int, str]]:
    """Send the plan through the API, step by step; returns the tally and the post ids by index."""
    tally = Tally()
    post_ids: dict[int, str] = {}

    def run(step: str, items: list, do: Callable) -> None:
        with ThreadPoolExecutor(threads) as pool:
            for status in pool.map(do, items):
                tally.add(step, status)

    def register(member: Member) -> int:
        first, _, last = member.id.rsplit("-", 1)[0].partition(".")
        return api.call(member.id, "PUT", "profiles", "/v1/profile",
                        {"name": f"{first.title()} {last.title()}".strip(),
                         "headline": f"Engineer at {member.company}"})[0]

    def invite_and_accept(item) -> int:
        inviter, invitee, message = item
        status, inv = api.call(inviter, "POST", "connections", "/v1/invitations",
                               {"invitee": invitee, "message": message})
        if status != 201 or inv.get("status") != "pending":
            return status  # 409 already_connected on a second run with the same tag
        return api.call(invitee, "POST", "connections", f"/v1/invitations/{inv['id']}/accept")[0]

    def invite(item) -> int:
        inviter, invitee, message = item
        return api.call(inviter, "POST", "connections", "/v1/invitations", {"invitee": invitee, "message": message})[0]

    def follow(item) -> int:
        follower, followee, alerts = item
        return api.call(follower, "PUT", "follows", f"/v1/following/{followee}", {"notify_on_post": alerts})[0]

    def publish(item) -> int:
        index, (author, text, visibility) = item
        status, post = api.call(author, "POST", "feed", "/v1/posts", {"text": text, "visibility": visibility})
        if status == 201:
            post_ids[index] = post["id"]
        return status

    def on_post(method: str, suffix: str, body: Callable = lambda item: None):
        def do(item) -> int:
            who, index = item[0], item[1]
            if index not in post_ids:
                return 0
            path = f"/v1/posts/{post_ids[index]}{suffix}" if suffix is not None else "/v1/posts"
            payload = body(item)
            return api.call(who, method, "feed", path, payload)[0]
        return do

    # A member exists from their first profile: nothing else is accepted before it.
    run("profiles", list(plan.members.values()), register)
    run("connections", plan.invitations, invite_and_accept)
    run("invitations left pending", plan.pending, invite)
    run("follows", plan.follows, follow)
    run("posts", list(enumerate(plan.posts)), publish)
    # Likes and comments on connections-only posts need the feed service to know the
    # connection (it learns it from connections.events): a 404 here just means "not yet".
    run("likes", plan.likes, on_post("PUT", "/like"))
    run("comments", plan.comments, on_post("POST", "/comments", lambda item: {"text": item[2]}))
    run("reshares", plan.reshares, on_post("POST", None, lambda item: {"reshare_of": post_ids[item[1]]}))
    return tally, post_ids


def _wait(probe: Callable[[], list], timeout: float) -> list:
    """Poll ``probe`` until it gives a non-empty list, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        items = probe()
        if items or time.monotonic() > deadline:
            return items
        time.sleep(0.25)


def show(api: Api, plan: Plan, out: Callable[[str], None], wait: float = 20.0) -> bool:
    """Print what the featured member sees; returns whether their feed holds posts of others."""
    me = plan.featured

    def feed() -> list:
        status, page = api.call(me, "GET", "feed", "/v1/feed?limit=10")
        return [p for p in page.get("items", []) if p["author"] != me] if status == 200 else []

    # The feed fills as the workers fan posts out and backfill follows: give them a moment.
    others = _wait(feed, wait)
    _wait(lambda: [n for n in api.call(me, "GET", "notifications", "/v1/notifications?limit=1")[1].get("items", [])
                   if n["type"] == "post_liked"], wait / 2)
    connections = api.call(me, "GET", "connections", f"/v1/members/{me}/connections/count")[1].get("count")
    stats = api.call(me, "GET", "follows", f"/v1/members/{me}/follow-stats")[1]
    out(f"\n=== What {me} sees ===")
    out(f"{connections} connections · {stats.get('followers')} followers · following {stats.get('following')}")

    status, page = api.call(me, "GET", "feed", "/v1/feed?limit=10")
    posts = page.get("items", []) if status == 200 else []
    out(f"\nHome feed ({len(posts)} newest):")
    for p in posts:
        kind = "reshare" if p["reshare_of"] else p["visibility"]
        out(f"  - {p['author']} [{kind}] {p['likes']} likes, {p['comments']} comments")
        out(f"      {p['text'][:100] or '(reshared without a comment)'}")
    if not posts:
        out("  (empty: are the workers running? `rapport status`)")

    status, count = api.call(me, "GET", "notifications", "/v1/notifications/unread-count")
    status, page = api.call(me, "GET", "notifications", "/v1/notifications?limit=10")
    items = page.get("items", []) if status == 200 else []
    out(f"\nNotifications ({count.get('count')} unread; the {len(items)} newest):")
    for n in items:
        out(f"  - {n['summary']}")

    status, page = api.call(me, "GET", "connections", "/v1/invitations?direction=received")
    waiting = page.get("items", []) if status == 200 else []
    out(f"\nInvitations waiting: {len(waiting)}")
    for inv in waiting:
        out(f"  - from {inv['inviter']}" + (f": \"{inv['message']}\"" if inv.get("message") else ""))

    status, page = api.call(me, "GET", "connections", "/v1/suggestions?limit=5")
    out("\nPeople you may know:")
    if status in (404, 405):
        out(f"  (GET /v1/suggestions answered {status}: suggestions are not available on this stack yet)")
    elif status != 200:
        out(f"  (GET /v1/suggestions answered {status})")
    else:
        for s in page.get("items", []):
            mutual = s.get("mutual_connections", "?")
            out(f"  - {s['member']} ({mutual} mutual connection{'' if mutual == 1 else 's'})")
        if not page.get("items"):
            out("  (none yet)")
    out(f"\nExplore as {me}: TOKEN=$(rapport token {me}); "
        f"curl -H \"Authorization: Bearer $TOKEN\" localhost:{api.settings.ports['feed']}/v1/feed")
    return bool(others)


def run(settings: Settings, members: int = 300, seed: int = 7, tag: str | None = None,
        host: str = "127.0.0.1", out: Callable[[str], None] = print) -> int:
    """Load the network and show it; returns a process exit code."""
    tag = tag or format(int(time.time()) % 36 ** 5, "x")
    plan = plan_network(members, seed, tag)
    api = Api(settings, host)
    for service in dict.fromkeys([*settings.ports, "profiles"]):
        try:
            api._connection(service).request("GET", "/healthz")
            api._connection(service).getresponse().read()
        except OSError as exc:
            out(f"rapport demo: the {service} API is not answering on {host}:{api.port(service)} ({exc}); "
                "start the stack with `make run` or `rapport up`")
            return 1
    out(f"Loading a network of {members} members (seed {seed}, run tag {tag!r}) through the HTTP API ...")
    began = time.monotonic()
    tally, _ = load(api, plan)
    out(f"  {tally.ok('profiles')} members registered, {tally.ok('connections')} connections, {tally.ok('invitations left pending')} pending invitations, "
        f"{tally.ok('follows')} follows, {tally.ok('posts')} posts, {tally.ok('reshares')} reshares, "
        f"{tally.ok('likes')} likes, {tally.ok('comments')} comments in {time.monotonic() - began:.1f}s")
    refused = {step: {s: n for s, n in counts.items() if s >= 300} for step, counts in tally.counts.items()}
    refused = {step: counts for step, counts in refused.items() if counts}
    if refused:
        # Mostly 404s: a member reacting to a connections-only post they may not see, which the
        # API refuses as if the post did not exist. Said, so a newcomer sees the rule at work.
        out(f"  refused, as the rules say (status: count): {refused}")
    if not show(api, plan, out):
        out(f"\nrapport demo: {plan.featured}'s feed shows no one else's post yet")
        return 1
    return 0
