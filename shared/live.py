"""Live streams of a member's news as server-sent events, shared by every service that has one
(the notifications stream, the messaging stream).

A service appends each piece of news for a member to the member's capped Redis stream in the
same script that stores it, and rings the member's bell (a pub/sub channel). A client reads
from a stream entry id on: the entry ids are the SSE event ids, so a client that reconnects
with ``Last-Event-ID`` gets what it missed, as far back as the stream keeps.

Open streams cost no store connection each: one ``LiveHub`` per API process holds one pub/sub
connection for the bells of every member it serves and a small pool for short reads. A stream
waits on its bell (or the keep-alive period), then reads what is new without blocking.

A member has at most ``streams_per_member`` open streams of a service across every process (a
sorted set in the store, with each stream's heartbeat beside it); opening one more closes the
oldest.

What is the service's own: its keys (``LiveKeys``, built in its ``store.py``) and how a batch
of stream entries becomes SSE text (``render``).
"""
from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from prometheus_client import Gauge

from shared.clock import now_ms
from shared.logs import get_logger
from shared.lua import LuaScript
from shared.problems import Invalid, Unauthorized

log = get_logger(__name__)

STREAM_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
_MAX_ID_PART = 2**64 - 1  # Redis stream ids are two unsigned 64-bit numbers

# How long a stream waits for its bell before a keep-alive, and so its heartbeat period. Short,
# because a client that went away is only noticed when something is written to it.
KEEPALIVE_SECONDS = 5.0

# A stream ends after this long and the client reconnects with Last-Event-ID (nothing is lost):
# connections spread again over the API's workers, e.g. after a deploy.
MAX_STREAM_SECONDS = 300.0

# Tell EventSource clients how soon to reconnect (ms).
RETRY_MS = 2000

# A stream whose heartbeat is older than this many keep-alive periods belongs to a process
# that is gone: the count forgets it.
STALE_HEARTBEATS = 3

# Entries read at once; more waiting are read on before the stream sleeps.
READ_BATCH = 100

# Under gunicorn each process counts its own streams (prometheus-client's multiprocess mode):
# /metrics adds up those of the processes alive.
OPEN_STREAMS = Gauge("rapport_live_streams_open", "Live streams open", ["service"], multiprocess_mode="livesum")


@dataclass(frozen=True)
class LiveKeys:
    """Where one service keeps a member's stream and its bookkeeping (its ``store.py`` builds them).

    ``streams`` and ``beats`` of one member must share a hash slot (one script touches both)."""
    stream: Callable[[str], str]  # the member's capped stream of news
    streams: Callable[[str], str]  # sorted set: open streams by opening time (ms)
    beats: Callable[[str], str]  # sorted set: open streams by last heartbeat (ms)
    bell: Callable[[str], str]  # pub/sub channel: "new", or "close:<stream id>"
    bell_member: Callable[[str], str]  # the inverse of ``bell``
    ticket: Callable[[str], str]  # string: the member a stream ticket was issued to


# Registers an open stream of one member, forgets streams whose process stopped sending
# heartbeats, and returns the ids of the oldest beyond the cap: their holders close them.
OPEN_STREAM = LuaScript("open_stream", keys=("opened", "beats"), args=("id", "now", "stale", "cap", "ttl"), source="""
local dead = redis.call('ZRANGEBYSCORE', K.beats, '-inf', '(' .. A.stale)
for _, old in ipairs(dead) do
  redis.call('ZREM', K.opened, old)
  redis.call('ZREM', K.beats, old)
end
redis.call('ZADD', K.opened, A.now, A.id)
redis.call('ZADD', K.beats, A.now, A.id)
redis.call('EXPIRE', K.opened, A.ttl)
redis.call('EXPIRE', K.beats, A.ttl)
local excess = redis.call('ZCARD', K.opened) - tonumber(A.cap)
if excess <= 0 then return {} end
local evicted = {}
local gone = redis.call('ZPOPMIN', K.opened, excess)
for i = 1, #gone, 2 do
  evicted[#evicted + 1] = gone[i]
  redis.call('ZREM', K.beats, gone[i])
end
return evicted
""")

# A stream's heartbeat: 1 while it is registered (its beat refreshed), 0 once it was closed
# from elsewhere (evicted by a newer stream).
STREAM_HEARTBEAT = LuaScript("stream_heartbeat", keys=("opened", "beats"), args=("id", "now", "ttl"), source="""
if not redis.call('ZSCORE', K.opened, A.id) then return 0 end
redis.call('ZADD', K.beats, A.now, A.id)
redis.call('EXPIRE', K.opened, A.ttl)
redis.call('EXPIRE', K.beats, A.ttl)
return 1
""")


def is_stream_id(value: str) -> bool:
    """Whether ``value`` is an entry id Redis could have given (``<ms>-<seq>``, each below 2^64)."""
    if not STREAM_ID.match(value):
        return False
    ms, seq = value.split("-")
    return int(ms) <= _MAX_ID_PART and int(seq) <= _MAX_ID_PART


def start_after(store: redis.Redis, stream_key: str, last_event_id: str | None) -> str:
    """The stream position to send from: after ``last_event_id``, else after the newest entry now."""
    if last_event_id:
        if not is_stream_id(last_event_id):
            raise Invalid({"Last-Event-ID": ["Not an event id this stream sent."]}, code="invalid_last_event_id")
        return last_event_id
    newest = store.xrevrange(stream_key, count=1)
    return newest[0][0] if newest else "0-0"


# A ticket is 32 random bytes, URL-safe base64 without padding: unguessable, and plain in a URL.
TICKET = re.compile(r"^[A-Za-z0-9_-]{43}$")


def issue_ticket(store: redis.Redis, keys: LiveKeys, member: str, ttl_seconds: int) -> tuple[str, int]:
    """A stream ticket for ``member``: a browser's EventSource cannot send Authorization, so it
    passes this in the URL instead of the long-lived token. Returns the ticket and when it
    expires (epoch ms). It opens ``member``'s stream once, within ``ttl_seconds``."""
    ticket = secrets.token_urlsafe(32)
    store.set(keys.ticket(ticket), member, ex=ttl_seconds)
    return ticket, now_ms() + ttl_seconds * 1000


def redeem_ticket(store: redis.Redis, keys: LiveKeys, ticket: str, issuer: str) -> str:
    """The member ``ticket`` was issued to; the ticket is used up (GETDEL: of two requests racing
    with one ticket, one gets the member). A 401 for a ticket unknown, expired or used; ``issuer``
    names the operation that gives new ones."""
    member = store.getdel(keys.ticket(ticket)) if TICKET.fullmatch(ticket) else None
    if member is None:
        raise Unauthorized(f"The stream ticket is unknown, expired or already used: ask for a new one ({issuer}).",
                           code="invalid_stream_ticket")
    return member


class Listener:
    """One open stream, as the hub sees it."""

    def __init__(self, member: str):
        self.id = uuid.uuid4().hex
        self.member = member
        self.bell = threading.Event()
        self.closed = False


class LiveHub:
    """The open streams of one API process: one pub/sub connection for all their bells.

    Made per process, used lazily (after gunicorn forks). Under gevent its thread is a greenlet.
    """

    def __init__(self, store: redis.Redis, keys: LiveKeys, streams_per_member: int,
                 keepalive: float = KEEPALIVE_SECONDS, *, service: str = ""):
        self.service = service  # names the streams in ``rapport_live_streams_open``
        self.store = store
        self.keys = keys
        self.streams_per_member = streams_per_member
        self.keepalive = keepalive
        self._listeners: dict[str, set[Listener]] = {}  # member → this process's open streams
        self._lock = threading.Lock()
        self._pubsub: redis.client.PubSub | None = None
        self._thread: threading.Thread | None = None

    # --- the count across processes -----------------------------------------------------

    def _ttl(self) -> int:
        return int(self.keepalive * STALE_HEARTBEATS) + 60

    def _count_keys(self, member: str) -> dict[str, str]:
        return {"opened": self.keys.streams(member), "beats": self.keys.beats(member)}

    def open(self, member: str) -> Listener:
        """Register a stream of ``member``; the oldest beyond the cap, wherever they are, close."""
        listener = Listener(member)
        with self._lock:
            first = member not in self._listeners
            self._listeners.setdefault(member, set()).add(listener)
        OPEN_STREAMS.labels(self.service).inc()
        if first:
            self._subscribe(self.keys.bell(member))
        now = int(time.time() * 1000)
        stale = now - int(self.keepalive * STALE_HEARTBEATS * 1000)
        evicted = OPEN_STREAM(self.store, keys=self._count_keys(member), id=listener.id, now=now, stale=stale,
                              cap=self.streams_per_member, ttl=self._ttl())
        for stream_id in evicted:
            self.store.publish(self.keys.bell(member), f"close:{stream_id}")
            self._close_local(member, stream_id)  # at once when it is ours
        return listener

    def heartbeat(self, listener: Listener) -> bool:
        """Refresh ``listener``'s place in the count; False when it was closed from elsewhere."""
        alive = STREAM_HEARTBEAT(self.store, keys=self._count_keys(listener.member), id=listener.id,
                                 now=int(time.time() * 1000), ttl=self._ttl())
        if not alive:
            listener.closed = True
        return bool(alive)

    def close(self, listener: Listener) -> None:
        """The stream ended: leave the count, and the bell when it was this process's last one."""
        listener.closed = True
        with self._lock:
            mine = self._listeners.get(listener.member, set())
            if listener in mine:
                OPEN_STREAMS.labels(self.service).dec()
            mine.discard(listener)
            last = not mine
            if last:
                self._listeners.pop(listener.member, None)
        try:
            with self.store.pipeline(transaction=True) as tx:  # two keys of one member: one slot
                tx.zrem(self.keys.streams(listener.member), listener.id)
                tx.zrem(self.keys.beats(listener.member), listener.id)
                tx.execute()
            if last:
                self._unsubscribe(self.keys.bell(listener.member))
        except redis.RedisError as exc:  # the heartbeat's expiry forgets it anyway
            log.warning("stream close not recorded", member=listener.member, error=repr(exc))

    def _close_local(self, member: str, stream_id: str) -> None:
        with self._lock:
            for listener in self._listeners.get(member, ()):
                if listener.id == stream_id:
                    listener.closed = True
                    listener.bell.set()

    # --- the bells --------------------------------------------------------------------

    def _subscribe(self, channel: str) -> None:
        with self._lock:
            if self._pubsub is None:
                self._pubsub = self.store.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(channel)
                self._thread = threading.Thread(target=self._dispatch, name="live-hub", daemon=True)
                self._thread.start()
                return
        self._pubsub.subscribe(channel)

    def _unsubscribe(self, channel: str) -> None:
        if self._pubsub is not None:
            self._pubsub.unsubscribe(channel)

    def _dispatch(self) -> None:
        """Ring the bells of this process's streams as messages arrive."""
        while True:
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except (redis.RedisError, OSError) as exc:
                # Streams still read every keep-alive period: a lost bell only delays them.
                log.warning("live hub lost its subscription; resubscribing", error=repr(exc))
                time.sleep(1.0)
                self._resubscribe()
                continue
            if not message or message.get("type") != "message":
                continue
            member = self.keys.bell_member(message["channel"])
            data = message["data"]
            if data.startswith("close:"):
                self._close_local(member, data[len("close:"):])
                continue
            with self._lock:
                for listener in self._listeners.get(member, ()):
                    listener.bell.set()

    def _resubscribe(self) -> None:
        try:
            self._pubsub.reset()
            with self._lock:
                channels = [self.keys.bell(m) for m in self._listeners]
            if channels:
                self._pubsub.subscribe(*channels)
        except (redis.RedisError, OSError) as exc:
            log.warning("live hub cannot resubscribe yet", error=repr(exc))

    def open_channels(self) -> int:
        """How many members this process serves streams to (tests, metrics)."""
        with self._lock:
            return len(self._listeners)


Render = Callable[[redis.Redis, str, list], str]


def events(hub: LiveHub, member: str, after: str, render: Render,
           lifetime: float = MAX_STREAM_SECONDS) -> Iterator[str]:
    """Server-sent events for ``member`` from stream position ``after`` on, until the client goes,
    a newer stream of theirs closes this one, or ``lifetime`` seconds have passed.

    ``render(store, member, entries)`` turns a batch of stream entries into SSE text (each
    event's ``id:`` the entry id), leaving out what the member may no longer see."""
    listener = hub.open(member)
    try:
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        try:
            key = hub.keys.stream(member)
            ends = time.monotonic() + lifetime
            next_beat = time.monotonic() + hub.keepalive
            while time.monotonic() < ends and not listener.closed:
                # The bell is cleared before reading, so an entry added during the read rings again.
                listener.bell.clear()
                reply = hub.store.xread({key: after}, count=READ_BATCH)
                if reply:
                    entries = reply[0][1]
                    after = entries[-1][0]
                    chunk = render(hub.store, member, entries)
                    if chunk:
                        yield chunk
                    if len(entries) == READ_BATCH:
                        continue  # more waiting: read on before sleeping
                rung = listener.bell.wait(max(0.0, next_beat - time.monotonic()))
                if listener.closed:
                    break
                if not rung or time.monotonic() >= next_beat:
                    if not hub.heartbeat(listener):
                        break
                    next_beat = time.monotonic() + hub.keepalive
                    yield ": keep-alive\n\n"
            if listener.closed:
                yield ": closed, a newer stream of this member replaced this one\n\n"
        except redis.RedisError as exc:
            # The store is slow or away: end this stream, the client reconnects with Last-Event-ID
            # and misses nothing.
            log.warning("live stream ended by a store error", member=member, error=repr(exc))
            yield ": the store is unavailable for a moment, reconnect\n\n"
    finally:
        hub.close(listener)
