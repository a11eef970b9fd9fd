"""Redis round trips and the API's CPU per write request, in process, without the HTTP server.

Each write (``follow``: ``PUT /v1/following/{m}``; ``invite``: ``POST /v1/invitations``) is
sent through the service's own app (flask's test client) on the benchmark's Redis databases,
every request to a new pair of registered members. A round trip is one write to a Redis
socket (a command, or a whole pipeline): counted by wrapping redis-py's
``send_packed_command``. CPU is this process's (``time.process_time``) per request, and the
store Redis server's (``INFO cpu``: whatever else uses that server counts too, so run it alone).
``GET /healthz`` (the follows app) runs beside them as the yardstick: the floor of any request.

With ``--compare DIR`` the same measurement runs on the code of another checkout (its own
process, ``PYTHONPATH=DIR``), in turns with this one, so the two are side by side in one run.

    python -m bench.request_trips [--requests 1500] [--turns 3] [--compare DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid

WRITES = ("follow", "invite")
# Measured beside the writes, as the floor every request pays (routing, request id, metrics, the
# log line): a write's CPU is best read as a multiple of it, measured in the same run.
YARDSTICK = "healthz"


def measure(write: str, count: int) -> dict:
    """(in this process) round trips and CPU per ``write`` request, over ``count`` requests."""
    import redis.connection

    from bench.support import bench_settings, register, token_for
    from shared import store_client

    settings = bench_settings(log_level="WARNING")
    if write in ("follow", YARDSTICK):
        from services.follows.app import create_app
    else:
        from services.connections.app import create_app
    client = create_app(settings=settings).test_client()
    tag = uuid.uuid4().hex[:6]
    pairs = [(f"rt{write[0]}a{i}-{tag}", f"rt{write[0]}b{i}-{tag}") for i in range(count + 20)]
    register(settings, [m for pair in pairs for m in pair])
    heads = [{"Authorization": f"Bearer {token_for(settings, a)}"} for a, _ in pairs]

    def send(i: int) -> int:
        a, b = pairs[i]
        if write == YARDSTICK:
            return client.get("/healthz").status_code
        if write == "follow":
            return client.put(f"/v1/following/{b}", headers=heads[i]).status_code
        return client.post("/v1/invitations", json={"invitee": b}, headers=heads[i]).status_code

    for i in range(count, count + 20):  # warm: connections, scripts loaded, tokens decoded once
        send(i)
    trips = 0
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(self, *args, **kwargs):
        nonlocal trips
        trips += 1
        return original(self, *args, **kwargs)

    store = store_client.connect(settings.store_url("follows" if write in ("follow", YARDSTICK) else "connections"))
    store_before = server_cpu(store)
    redis.connection.AbstractConnection.send_packed_command = counted
    statuses: dict[int, int] = {}
    started = time.process_time()
    try:
        for i in range(count):
            status = send(i)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        redis.connection.AbstractConnection.send_packed_command = original
    cpu = time.process_time() - started
    store_cpu = server_cpu(store) - store_before
    return {"requests": count, "answers": statuses, "round_trips_per_request": round(trips / count, 2),
            "cpu_ms_per_request": round(cpu / count * 1000, 3),
            "store_cpu_ms_per_request": round(store_cpu / count * 1000, 3)}


def server_cpu(client) -> float:
    """CPU seconds the Redis server behind ``client`` has used (user + system)."""
    info = client.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def run_in(directory: str, write: str, count: int) -> dict:
    """``measure`` in a child process on the code in ``directory``."""
    env = {**os.environ, "PYTHONPATH": directory}
    # This file runs as a script, so the other checkout need not have it: everything it
    # imports comes from ``directory``.
    out = subprocess.run([sys.executable, __file__, "--child", write, "--requests", str(count)],
                         cwd=directory, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--compare", metavar="DIR", help="another checkout, measured in turns with this one")
    parser.add_argument("--child", choices=(*WRITES, YARDSTICK), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.requests)))
        return
    from bench.support import write_results
    from shared.settings import REPO_ROOT

    sides = {"this": str(REPO_ROOT)}
    if args.compare:
        sides["compared"] = os.path.abspath(args.compare)
    figures: dict = {"requests": args.requests, "compared": sides.get("compared"), "writes": {}}
    for write in (YARDSTICK, *WRITES):
        runs: dict[str, list] = {side: [] for side in sides}
        for _ in range(args.turns):
            for side, directory in sides.items():
                result = run_in(directory, write, args.requests)
                runs[side].append(result)
                print(f"{write} {side}: {result['round_trips_per_request']} round trips, "
                      f"{result['cpu_ms_per_request']} ms CPU a request (store Redis "
                      f"{result.get('store_cpu_ms_per_request')} ms), answers {result['answers']}", flush=True)
        figures["writes"][write] = {side: {
            "runs": results,
            "round_trips_per_request": results[0]["round_trips_per_request"],
            "cpu_ms_per_request_median": sorted(r["cpu_ms_per_request"] for r in results)[len(results) // 2],
            "store_cpu_ms_per_request_median": sorted(r.get("store_cpu_ms_per_request", 0)
                                                      for r in results)[len(results) // 2],
        } for side, results in runs.items()}
    write_results("request_trips", figures)


if __name__ == "__main__":
    main()
