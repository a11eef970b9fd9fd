"""Benchmark of the messaging service.

1. Send → recipient's stream latency: 200 open streams, 200 messages a second sent over HTTP
   (each to a different recipient's conversation), from the start of the POST until the
   recipient's stream has the message. The API runs under gunicorn (gevent), the worker
   (relay + projection) in a process of its own (``rapport worker messaging``), as deployed;
   the senders in a process of their own beside the streams' listeners, each message carrying
   the wall-clock time it was sent at.
2. Conversation list with 1,000 conversations: GET /v1/conversations (a page of 20) under wrk,
   one connection (the latency of one read) and 16.
3. Send throughput: POST /v1/conversations/{id}/messages under wrk, beside /healthz of the same
   API in the same run, as a ratio, and the API's CPU per request of each.

The connections the rules need are seeded into the messaging store's replica as
connections.events would (the PAIR script), so the benchmark runs without the connections
service. The load average of the machine is recorded at the start and the end.

    .venv/bin/python -m bench.messaging [--quick] [--rate 200]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid

import requests

from bench.support import (
    StreamListeners,
    bench_settings,
    percentiles,
    process_tree_cpu,
    register,
    served,
    settings_env,
    stop_on_sigterm,
    token_for,
    write_results,
    wrk,
)
from services.messaging.store import PAIR, Keys
from shared import store_client
from shared.settings import REPO_ROOT


def seed_connections(settings, member: str, others: list[str]) -> None:
    """Register ``member`` and ``others`` and record them connected in the messaging store's replica."""
    register(settings, [member, *others])
    store = store_client.connect(settings.store_url("messaging"))
    keys = Keys(settings.shards)
    with store.pipeline(transaction=False) as pipe:
        for other in others:
            PAIR(store, keys={"pair": keys.pair(member, other)}, pipe=pipe, version=1, connected="1", blocker="",
                 block="")
        pipe.execute()
    store.close()


def start(base: str, settings, sender: str, other: str, text: str = "hello") -> str:
    response = requests.post(f"{base}/v1/conversations", json={"participants": [other], "text": text}, timeout=10,
                             headers={"Authorization": f"Bearer {token_for(settings, sender)}"})
    response.raise_for_status()
    return response.json()["conversation"]["id"]


@contextlib.contextmanager
def worker_process(settings):
    """The messaging worker (relay and consumers) in a process of its own, as the stack runs it."""
    proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "messaging"], cwd=REPO_ROOT,
                            env=settings_env(settings), start_new_session=True)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


def wait_projected(settings, member: str, count: int, timeout: float = 90) -> int:
    """Wait until ``member``'s list holds ``count`` conversations (the worker projected them)."""
    store = store_client.connect(settings.store_url("messaging"))
    inbox = Keys(settings.shards).inbox(member)
    deadline = time.monotonic() + timeout
    while store.zcard(inbox) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    listed = store.zcard(inbox)
    store.close()
    return listed


def send_paced(base: str, paths: list[str], tokens: list[str], run: str, rate: int, total: int, out) -> None:
    """Send ``total`` messages at ``rate`` a second from 32 threads (in a process of its own),
    each text ending with the wall-clock time it was sent at; put (errors, achieved rate) on ``out``."""
    errors = []
    senders_n = 32  # enough that a slow answer does not hold the pace back
    interval = senders_n / rate  # each sending thread's pace

    def send_some(k: int):
        session = requests.Session()
        next_at = time.monotonic() + k * interval / senders_n
        for i in range(k, total, senders_n):
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += interval
            j = i % len(paths)
            r = session.post(f"{base}{paths[j]}", json={"text": f"m-{run}-{i}@{time.time():.6f}"},
                             headers={"Authorization": f"Bearer {tokens[j]}"}, timeout=10)
            if r.status_code != 201:
                errors.append(r.status_code)

    started = time.monotonic()
    pacers = [threading.Thread(target=send_some, args=(k,)) for k in range(senders_n)]
    for p in pacers:
        p.start()
    for p in pacers:
        p.join()
    out.put((len(errors), total / (time.monotonic() - started)))


def stream_latency(base: str, api_pid: int, worker_pid: int, settings, streams: int, rate: int, seconds: int) -> dict:
    run = uuid.uuid4().hex[:6]
    recipients = [f"bench-r-{run}-{i}" for i in range(streams)]
    senders = [f"bench-s-{run}-{i}" for i in range(streams)]
    for sender, recipient in zip(senders, recipients):
        seed_connections(settings, sender, [recipient])
    conversations = [start(base, settings, s, r) for s, r in zip(senders, recipients)]
    wait_projected(settings, recipients[-1], 1)

    arrived: dict[str, float] = {}  # text → wall-clock time its recipient's stream had it

    def arrival(data: dict) -> None:
        arrived[data.get("text", "")] = time.time()

    listeners = StreamListeners(base, "/v1/conversations/stream", settings, recipients, key=arrival)
    time.sleep(1)  # the first messages' projections have passed

    total = rate * seconds
    cpu = process_tree_cpu(api_pid), process_tree_cpu(worker_pid)
    out = multiprocessing.get_context("spawn").Queue()
    sender = multiprocessing.get_context("spawn").Process(target=send_paced, args=(
        base, [f"/v1/conversations/{c}/messages" for c in conversations], [token_for(settings, s) for s in senders],
        run, rate, total, out))
    sender.start()
    errors, achieved = out.get()
    sender.join()
    mine = f"m-{run}-"
    deadline = time.monotonic() + 10
    while sum(1 for t in list(arrived) if t.startswith(mine)) < total - errors and time.monotonic() < deadline:
        time.sleep(0.1)
    listeners.close(within=0)
    api_cpu, worker_cpu = process_tree_cpu(api_pid) - cpu[0], process_tree_cpu(worker_pid) - cpu[1]
    latencies = [at - float(text.rsplit("@", 1)[1]) for text, at in list(arrived.items()) if text.startswith(mine)]
    return {"open_streams": streams, "messages_per_s_aimed": rate, "messages_per_s_sent": round(achieved, 1),
            "sent": total - errors, "delivered": len(latencies), "send_errors": errors, **percentiles(latencies),
            # Per message sent: its send, its projection and its delivery to one open stream.
            "api_cpu_ms_per_message": round(api_cpu * 1000 / max(total - errors, 1), 3),
            "worker_cpu_ms_per_message": round(worker_cpu * 1000 / max(total - errors, 1), 3)}


def list_latency(base: str, settings, count: int, seconds: int) -> tuple[dict, str, list[str]]:
    member = f"bench-list-{uuid.uuid4().hex[:6]}"
    others = [f"{member}-o{i}" for i in range(count)]
    seed_connections(settings, member, others)
    conversations = [start(base, settings, other, member) for other in others]
    listed = wait_projected(settings, member, count)
    url = f"{base}/v1/conversations"
    one = wrk(url, token_for(settings, member), seconds=seconds, connections=1, threads=1)
    many = wrk(url, token_for(settings, member), seconds=seconds, connections=16, threads=2)
    return {"conversations": listed, "page": 20, "one_connection": one, "sixteen_connections": many}, member, \
        conversations


def send_throughput(base: str, pid: int, settings, member: str, conversations: list[str], seconds: int) -> dict:
    paths = [f"/v1/conversations/{c}/messages" for c in conversations[:200]]
    body = json.dumps({"text": "A message of a few words, as most are."})

    def measured(*args, **kwargs) -> dict:
        cpu = process_tree_cpu(pid)
        figures = wrk(*args, **kwargs)
        figures["api_cpu_ms_per_request"] = round((process_tree_cpu(pid) - cpu) * 1000 / max(figures["requests"], 1),
                                                  3)
        return figures

    sends = measured(f"{base}{paths[0]}", token_for(settings, member), seconds=seconds, connections=16, threads=2,
                     method="POST", body=body, paths=paths)
    health = measured(f"{base}/healthz", None, seconds=seconds, connections=16, threads=2)
    # Only answered sends count: a 429 or a 5xx is cheaper than a stored message.
    ok_rps = sends["rps"] * (sends["requests"] - sends["non_2xx"]) / max(sends["requests"], 1)
    return {"send": sends, "healthz": health, "ratio": round(ok_rps / health["rps"], 3),
            "cpu_ratio": round(health["api_cpu_ms_per_request"] / max(sends["api_cpu_ms_per_request"], 1e-9), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--rate", type=int, default=200, help="messages a second of the stream latency run")
    args = parser.parse_args()
    stop_on_sigterm()
    seconds, stream_seconds, conversations = (5, 5, 300) if args.quick else (10, 15, 1_000)

    # Writes limits out of reach: one member sends every message of the throughput run. (An empty
    # setting does not reach gunicorn's processes: the environment reads "" as unset.)
    settings = bench_settings(write_rate_limits="1000000/second")
    os.environ["GUNICORN_CMD_ARGS"] = "--graceful-timeout 5 --worker-connections 1000"
    figures = {"load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    with worker_process(settings) as worker, \
            served("messaging", settings, workers=2) as (base, pid):  # gevent, as deployed
        figures["stream_latency"] = stream_latency(base, pid, worker.pid, settings, 200, args.rate, stream_seconds)
        print("send → stream:", figures["stream_latency"])
        figures["conversation_list"], member, ids = list_latency(base, settings, conversations, seconds)
        print("list:", figures["conversation_list"])
        figures["send_throughput"] = send_throughput(base, pid, settings, member, ids, seconds)
        print("send throughput:", figures["send_throughput"])
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["aims"] = {"stream_latency_p99_ms": "<= 150", "conversation_list_p99_ms": "<= 10",
                       "send_to_healthz_ratio": ">= 0.4"}
    write_results("messaging", figures)


if __name__ == "__main__":
    main()
