"""Benchmark of the notifications service.

1. Events handled per second by one notifications worker: N events are pre-loaded on a bench
   namespace's topics, then one worker (relay + inbox consumer) drains them.
2. Unread-count latency under wrk (gunicorn, gevent worker class).
3. Stream delivery latency with 200 open server-sent event streams: from producing a like to
   Kafka until the client reads the notification.

    .venv/bin/python -m bench.notifications_inbox [--quick]
"""
from __future__ import annotations

import argparse
import os
import random
import time
import uuid

from kafka import KafkaProducer

from bench.support import StreamListeners, bench_settings, gunicorn, percentiles, token_for, wrk, write_results
from shared.bus.consumer import HANDLED
from shared.bus.worker import Worker
from shared.clock import now_ms, rfc3339
from shared.events import encode, new_event

CONSUMER = "notifications.inbox"


def handled_so_far() -> float:
    return sum(HANDLED.labels(CONSUMER, outcome)._value.get()
               for outcome in ("handled", "duplicate", "skipped", "dead_lettered"))


def producer(settings) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all", linger_ms=5,
                         batch_size=256 * 1024)


def a_mix_of_events(count: int, members: list[str]) -> list:
    """Likes, comments, follows and invitations between ``members``, as the other services emit them."""
    events = []
    for i in range(count):
        author, actor = random.sample(members, 2)
        at = rfc3339(now_ms())
        roll = random.random()
        if roll < 0.6:
            events.append(new_event("feed", "post.liked", {"post_id": f"{author}~p{i % 5}", "author": author,
                                                           "actor": actor, "at": at}))
        elif roll < 0.75:
            events.append(new_event("feed", "comment.added", {"comment_id": f"c{i}", "post_id": f"{author}~p{i % 5}",
                                                              "author": author, "commenter": actor,
                                                              "excerpt": "Nice one", "at": at}))
        elif roll < 0.9:
            events.append(new_event("follows", "follow.created", {"follower": actor, "followee": author,
                                                                  "reason": "explicit", "since": at, "version": i + 1}))
        else:
            events.append(new_event("connections", "invitation.sent", {"invitation_id": f"{i:032x}", "inviter": actor,
                                                                       "invitee": author, "message": "Hello",
                                                                       "sent_at": at}))
    return events


def worker_throughput(settings, count: int) -> dict:
    members = [f"bench-{uuid.uuid4().hex[:6]}-{i}" for i in range(max(200, count // 20))]
    events = a_mix_of_events(count, members)
    out = producer(settings)
    for event in events:
        topic = settings.topic(f"{event.source.split('/')[1]}.events")
        out.send(topic, key=event.key.encode(), value=encode(event))
    out.flush()
    out.close()

    base = handled_so_far()
    started = time.monotonic()
    worker = Worker("notifications", settings).start()
    first_at = None
    deadline = started + 240
    while handled_so_far() - base < count and time.monotonic() < deadline:
        if first_at is None and handled_so_far() > base:
            first_at, first_count = time.monotonic(), handled_so_far() - base
        time.sleep(0.01)
    finished = time.monotonic()
    done = handled_so_far() - base
    worker.shutdown()
    steady = (done - first_count) / (finished - first_at) if first_at and finished > first_at else 0.0
    return {"events": count, "handled": int(done), "seconds_from_start": round(finished - started, 2),
            "events_per_s_including_join": round(done / (finished - started), 1),
            "events_per_s": round(steady, 1)}


def unread_count_latency(base: str, settings, seconds: int) -> dict:
    return wrk(f"{base}/v1/notifications/unread-count", token_for(settings, "bench-reader"), seconds=seconds,
               connections=32, threads=2)


def stream_delivery(base: str, settings, streams: int, rounds: int) -> dict:
    members = [f"bench-sse-{uuid.uuid4().hex[:6]}-{i}" for i in range(streams)]
    listeners = StreamListeners(base, "/v1/notifications/stream", settings, members, key=lambda data: data.get("object"))
    out = producer(settings)
    for r in range(rounds):
        for member in members:
            post = f"{member}~{uuid.uuid4().hex[:12]}"
            event = new_event("feed", "post.liked", {"post_id": post, "author": member, "actor": f"fan-{r}",
                                                     "at": rfc3339(now_ms())})
            listeners.mark(post)
            out.send(settings.topic("feed.events"), key=event.key.encode(), value=encode(event))
        out.flush()
        time.sleep(1.0)
    out.close()
    latencies = listeners.close()
    return {"open_streams": streams, "sent": len(listeners.sent), "delivered": len(latencies), **percentiles(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    args = parser.parse_args()
    count, seconds, rounds = (5_000, 5, 2) if args.quick else (30_000, 10, 5)

    settings = bench_settings()
    # The notifications API's gunicorn settings: streams end within 5 s of a shutdown (clients
    # reconnect with Last-Event-ID), and one process holds up to 1,000 open connections.
    os.environ["GUNICORN_CMD_ARGS"] = "--graceful-timeout 5 --worker-connections 1000"
    figures = {"worker": worker_throughput(settings, count)}
    print("worker:", figures["worker"])
    with gunicorn("notifications", settings, workers=2) as base:  # gevent, as deployed
        figures["unread_count"] = unread_count_latency(base, settings, seconds)
        print("unread-count:", figures["unread_count"])
        worker = Worker("notifications", settings).start()
        worker.wait_ready(60)
        try:
            figures["stream_delivery"] = stream_delivery(base, settings, 200, rounds)
        finally:
            worker.shutdown()
        print("stream delivery:", figures["stream_delivery"])
    figures["aims"] = {"events_per_s": ">= 3000", "stream_delivery_p99_ms": "<= 1000"}
    write_results("notifications_inbox", figures)


if __name__ == "__main__":
    main()
