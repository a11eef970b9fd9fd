"""What the messaging API's requests cost in CPU, in one process, beside /healthz.

On a shared machine a throughput figure moves with everyone else's load; the CPU time one
process spends per request moves much less. Through the Flask test client (the same app, its
middleware and the real Redis; no gunicorn, no network client), each figure the mean CPU
time (``time.process_time``) of a request after a warm-up:

- ``healthz``: the floor every request pays (routing, request id, metrics).
- ``send``: POST /v1/conversations/{id}/messages in a conversation of two.
- ``list``: GET /v1/conversations, a page of 20 of the member's 1,000 conversations (their list
  projected as the worker would, with ZADD).
- ``stream_batch``: what one open stream does for one new message: the XREAD of its stream
  and the rendering of the entry (``services.messaging.live``).

Also the Redis round trips of one send and of one list page (socket writes, counted).

    .venv/bin/python -m bench.messaging_cpu [--quick]
"""
from __future__ import annotations

import argparse
import time
import uuid


from bench.messaging import seed_connections
from bench.support import round_trips, bench_settings, token_for, write_results
from services.messaging import live
from services.messaging.app import create_app
from services.messaging.conversations import direct_id
from services.messaging.store import Keys


def cpu_ms(f, n: int) -> float:
    for _ in range(max(n // 10, 5)):
        f()
    started = time.process_time()
    for _ in range(n):
        f()
    return round((time.process_time() - started) / n * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    args = parser.parse_args()
    n, count = (200, 100) if args.quick else (1_000, 1_000)
    settings = bench_settings(write_rate_limits="1000000/second")
    app = create_app(settings=settings)
    client = app.test_client()
    keys = Keys(settings.shards)
    run = uuid.uuid4().hex[:6]
    member, other = f"bench-cpu-{run}", f"bench-cpu-{run}-o"
    others = [f"bench-cpu-{run}-{i}" for i in range(count)]
    seed_connections(settings, member, [other, *others])
    auth = {"Authorization": f"Bearer {token_for(settings, member)}"}
    conversation = client.post("/v1/conversations", json={"participants": [other], "text": "Hello"},
                               headers=auth).get_json()["conversation"]["id"]
    store = app.extensions["rapport.store"]
    with store.pipeline(transaction=False) as pipe:
        for i, o in enumerate(others):
            client.post("/v1/conversations", json={"participants": [member], "text": "Hello"},
                        headers={"Authorization": f"Bearer {token_for(settings, o)}"})
            pipe.zadd(keys.inbox(member), {direct_id(member, o): i})
        pipe.execute()

    def send():
        response = client.post(f"/v1/conversations/{conversation}/messages",
                               json={"text": "A message of a few words, as most are."}, headers=auth)
        assert response.status_code == 201, response.get_json()

    def page():
        response = client.get("/v1/conversations", headers=auth)
        assert response.status_code == 200 and len(response.get_json()["items"]) == 20

    # One stream's work for one message: its entry as the worker's PROJECT appends it.
    stream_key = keys.live_stream(member)
    entry = store.xadd(stream_key, {"type": "message", "conversation_id": conversation, "seq": 1})
    after = store.xrevrange(stream_key, count=2)[-1][0] if store.xlen(stream_key) > 1 else "0-0"
    hub, shown = app.extensions["messaging.live"], app.extensions["messaging.stream"]

    def stream_batch():
        entries = hub.store.xread({stream_key: after}, count=100)[0][1]
        assert entries[-1][0] == entry and "event: message" in live._chunk(shown, member, entries[-1:])

    figures = {"healthz_cpu_ms": cpu_ms(lambda: client.get("/healthz"), n), "send_cpu_ms": cpu_ms(send, n),
               "list_cpu_ms": cpu_ms(page, n), "stream_batch_cpu_ms": cpu_ms(stream_batch, n),
               "send_round_trips": round_trips(send), "list_round_trips": round_trips(page),
               "stream_batch_round_trips": round_trips(stream_batch)}
    figures["healthz_to_send_cpu_ratio"] = round(figures["healthz_cpu_ms"] / figures["send_cpu_ms"], 3)
    figures["healthz_to_list_cpu_ratio"] = round(figures["healthz_cpu_ms"] / figures["list_cpu_ms"], 3)
    figures["conversations"], figures["requests_each"] = count, n
    write_results("messaging_cpu_quick" if args.quick else "messaging_cpu", figures)


if __name__ == "__main__":
    main()
