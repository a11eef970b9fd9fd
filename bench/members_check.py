"""Benchmark: the member check every write makes (shared/members.py), with 100,000 members
registered in the follows service's replica.

Prints and writes bench/results/members_check.json:

- the bulk load: members registered per second (``register_many``, pipelined, as a bulk load does);
- memory per replica entry (INFO used_memory delta over the load);
- the check on a hit (``Directory.caller_registered``: one HGETALL), p50/p99;
- the check on a miss, which asks the profiles API: against a local HTTP server answering 404
  as the profiles API would (one HTTP round trip on loopback), and with nothing listening
  (the miss stands at once), p50/p99.

Run: ``.venv/bin/python -m bench.members_check`` (``--members`` to change the 100,000).
"""
from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


from bench.support import bench_settings, free_port, percentiles, write_results
from shared import store_client
from shared import members
from shared.auth import mint_token


class NotFound(BaseHTTPRequestHandler):
    """The profiles API's answer for an id nobody registered."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b'{"code": "member_not_found"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def timed(samples: int, call) -> dict:
    spent = []
    for _ in range(samples):
        t = time.perf_counter()
        call()
        spent.append(time.perf_counter() - t)
    return percentiles(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    settings = bench_settings()
    store = store_client.connect(settings.store_url("follows"))
    run = uuid.uuid4().hex[:6]
    ids = [f"m{i}-{run}" for i in range(args.members)]
    rng = random.Random(7)
    figures: dict = {"members": args.members}
    before = int(store.info("memory")["used_memory"])
    t = time.perf_counter()
    members.register_many(store, "follows", settings, ids)
    load_s = time.perf_counter() - t
    grown = int(store.info("memory")["used_memory"]) - before
    figures["load"] = {"seconds": round(load_s, 2), "members_per_second": round(args.members / load_s),
                       "bytes_per_member": round(grown / args.members, 1)}
    token = f"Bearer {mint_token(ids[0], settings.jwt_secret)}"

    hit = members.Directory("follows", settings, store)
    figures["hit"] = timed(5000, lambda: hit.caller_registered(rng.choice(ids), token))

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answering = members.Directory("follows", settings, store,
                                      members.ProfilesClient(f"http://127.0.0.1:{server.server_port}"))
        figures["miss_profiles_404"] = timed(500, lambda: answering.exists(f"ghost-{uuid.uuid4().hex[:8]}", token))
    finally:
        server.shutdown()
        server.server_close()
    silent = members.Directory("follows", settings, store, members.ProfilesClient(f"http://127.0.0.1:{free_port()}"))
    figures["miss_nothing_listening"] = timed(500, lambda: silent.exists(f"ghost-{uuid.uuid4().hex[:8]}", token))

    for start in range(0, len(ids), 10_000):
        store.unlink(*[members.key("follows", settings, m) for m in ids[start:start + 10_000]])
    write_results("members_check", figures)


if __name__ == "__main__":
    main()
