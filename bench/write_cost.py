"""What one write costs the whole stack: throughput, and the CPU seconds of every process per write.

The stack runs as ``rapport up`` runs it (each API under gunicorn, each service's worker as
its own process) on the benchmark's own Redis databases and Kafka namespace. For each write
(invite, accept, follow, unfollow, post with 0 and with 1,000 followers, like, comment) wrk
sends distinct requests at 16 connections for a few seconds (its threads take turns through
one list, so no request is sent twice); then the benchmark waits until the event path has
drained (every consumer group committed to the end of its topics, every outbox empty), so the
cost of what the write sets off in the workers, Kafka and Redis is counted too. CPU is read from /proc for every process: each
API (gunicorn master and workers), each worker (and within it the relay and each consumer
thread), Kafka, the store Redis and the cache Redis. ``GET /healthz`` runs in the same run,
for scale: the ratios between the figures are what to compare, as absolute times vary here.
Answers are counted by status and problem code; CPU is divided by the 2xx answers.

The write rate limits are counted as in production (the same Redis calls) but set high
(``BENCH_RATE_LIMITS``): the posts to 1,000 followers come from 10 authors, which the default
30 writes a second per member would cap at 300/s.

    python -m bench.write_cost [--seconds 5] [--connections 16] [--compare] [--only invite follow ...]

Kafka and Redis are shared with whatever else runs on the machine: run it on a quiet one.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

import redis
import requests

from bench.support import (EventPath, bench_settings, process_tree_cpu, served, settings_env, stop_on_sigterm, token_for,
                           write_results)
from shared.settings import REPO_ROOT, SERVICES, Settings

WRITES = ("invite", "accept", "follow", "unfollow", "post", "post_1000_followers", "like", "comment")


# --- the processes of the stack --------------------------------------------------------


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on ``port`` on this machine (Kafka)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    for part in out.split("pid=")[1:]:
        return int(part.split(",")[0])
    return None


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each named thread of ``pid`` (the worker names its threads after its parts)."""
    found: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


class Stack:
    """The APIs and workers of every service, plus the pids of Kafka and the two Redis."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.exits = contextlib.ExitStack()
        self.urls: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self.workers: list[subprocess.Popen] = []

    def __enter__(self) -> "Stack":
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> "Stack":
        env = settings_env(self.settings)
        for service in SERVICES:
            worker = subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", service], cwd=REPO_ROOT,
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
            self.workers.append(worker)
            self.pids[f"{service}-worker"] = worker.pid
        for service in SERVICES:
            base, pid = self.exits.enter_context(served(service, self.settings))
            self.urls[service] = base
            self.pids[f"{service}-api"] = pid
        kafka = listener_pid(int(self.settings.kafka_bootstrap.split(",")[0].rpartition(":")[2]))
        if kafka:
            self.pids["kafka"] = kafka
        for name, url in (("redis-store", self.settings.store_url("feed")), ("redis-cache", self.settings.cache_url)):
            self.pids[name] = int(redis.Redis.from_url(url).info("server")["process_id"])
        self.path = self.exits.enter_context(contextlib.closing(EventPath(self.settings)))
        time.sleep(3)  # the consumers join their groups
        return self

    def __exit__(self, *exc) -> None:
        self.exits.close()
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of every process, and of each worker's threads (``<service>-worker/<thread>``)."""
        out = {name: process_tree_cpu(pid) for name, pid in self.pids.items()}
        for service in SERVICES:
            for thread, seconds in thread_cpu(self.pids[f"{service}-worker"]).items():
                out[f"{service}-worker/{thread}"] = seconds
        return out

    def settle(self, timeout: float = 90.0) -> float:
        """Wait until the event path has drained: every consumer group committed up to the end
        of its topics and every outbox is empty (``EventPath.drain``); returns the wait."""
        return self.path.drain(timeout)


# --- the requests of each write ----------------------------------------------------------


class Requests:
    """Distinct requests for wrk: (method, path, member, body)."""

    def __init__(self, settings: Settings, count: int):
        self.settings = settings
        self.count = count
        self.tag = uuid.uuid4().hex[:6]

    def member(self, name: str, i: int) -> str:
        return f"{name}{i}-{self.tag}"

    def auth(self, member: str) -> dict:
        return {"Authorization": f"Bearer {token_for(self.settings, member)}"}


WRK_THREADS = 2

# Numbers wrk's threads 1..WRK_THREADS (``id``, for requests that must not repeat), counts every
# answer by status and problem code (each thread its own table, added up in ``done``), then
# prints one RESULT line.
_RESULT_LUA = """
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end
answers = {}
response = function(status, headers, body)
  local key = tostring(status)
  if status >= 300 and body then
    local code = body:match('"code"%s*:%s*"([^"]+)"')
    if code then key = key .. " " .. code end
  end
  answers[key] = (answers[key] or 0) + 1
end
done = function(summary, latency)
  local total = {}
  for _, thread in ipairs(threads) do
    for key, n in pairs(thread:get("answers")) do total[key] = (total[key] or 0) + n end
  end
  for key, n in pairs(total) do io.write(string.format("ANSWER %d %s\\n", n, key)) end
  io.write(string.format("RESULT %d %f %f %f\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
"""

HEALTHZ_LUA = 'request = function() return wrk.format("GET", "/healthz") end\n' + _RESULT_LUA


def lua_for(requests_list: list[tuple[str, str, str, dict | None]], settings: Settings) -> str:
    """A wrk script that sends each request once: wrk's threads take turns through the list
    (thread k sends k, k + WRK_THREADS, ...), starting over if the run outlasts it."""
    rows = []
    for method, path, member, body in requests_list:
        headers = {"Authorization": f"Bearer {token_for(settings, member)}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        rows.append("{%s,%s,{%s},%s}" % (
            json.dumps(method), json.dumps(path),
            ",".join(f"[{json.dumps(k)}]={json.dumps(v)}" for k, v in headers.items()),
            json.dumps(json.dumps(body)) if body is not None else "nil"))
    return ("local reqs = {" + ",\n".join(rows) + "}\n"
            "local i\n"
            "request = function()\n"
            f"  i = i and i + {WRK_THREADS} or id\n"
            "  if i > #reqs then i = (i - 1) % #reqs + 1 end\n"
            "  local r = reqs[i]\n"
            "  return wrk.format(r[1], r[2], r[3], r[4])\n"
            "end\n" + _RESULT_LUA)


def run_wrk(base: str, script: str, seconds: int, connections: int) -> dict:
    """One wrk run: throughput and latency, and the answers counted by status (and problem code)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(["wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{seconds}s", "-s", f.name, base],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    answers = {}
    for line in out.splitlines():
        if line.startswith("ANSWER "):
            _, n, key = line.split(" ", 2)
            answers[key] = int(n)
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    reqs, duration_us, p50, p99 = line.split()[1:]
    ok = sum(n for key, n in answers.items() if key.startswith("2"))
    return {"requests": int(reqs), "ok": ok, "non_2xx": int(reqs) - ok,
            "answers": dict(sorted(answers.items(), key=lambda kv: -kv[1])),
            "seconds": round(float(duration_us) / 1e6, 2),
            "rps": round(int(reqs) / (float(duration_us) / 1e6), 1),
            "ok_rps": round(ok / (float(duration_us) / 1e6), 1),
            "p50_ms": round(float(p50) / 1000, 2), "p99_ms": round(float(p99) / 1000, 2)}


def prepare(write: str, stack: Stack, r: Requests) -> tuple[str, list]:
    """The service to hit and the distinct requests for ``write``; sets up what they need first."""
    n, urls, s = r.count, stack.urls, requests.Session()
    if write == "invite":
        return "connections", [("POST", "/v1/invitations", r.member("inviter", i), {"invitee": r.member("invitee", i)})
                               for i in range(n)]
    if write == "accept":
        made = []
        for i in range(n):
            inviter, invitee = r.member("asker", i), r.member("accepter", i)
            reply = s.post(f"{urls['connections']}/v1/invitations", json={"invitee": invitee},
                           headers=r.auth(inviter))
            reply.raise_for_status()
            made.append(("POST", f"/v1/invitations/{reply.json()['id']}/accept", invitee, None))
        return "connections", made
    if write == "follow":
        return "follows", [("PUT", f"/v1/following/{r.member('followee', i)}", r.member("follower", i), None)
                           for i in range(n)]
    if write == "unfollow":
        made = []
        for i in range(n):
            follower, followee = r.member("leaver", i), r.member("left", i)
            s.put(f"{urls['follows']}/v1/following/{followee}", headers=r.auth(follower)).raise_for_status()
            made.append(("DELETE", f"/v1/following/{followee}", follower, None))
        return "follows", made
    if write == "post":
        return "feed", [("POST", "/v1/posts", r.member("writer", i), {"text": f"post {i}"}) for i in range(n)]
    if write == "post_1000_followers":
        authors = [r.member("famous", a) for a in range(10)]
        fans = [r.member("fan", i) for i in range(1000)]
        cache = redis.Redis.from_url(stack.settings.cache_url)
        with cache.pipeline(transaction=False) as pipe:
            for fan in fans:  # live timelines, as their first read leaves them
                pipe.zadd(f"timeline:{{{fan}}}", {"~live": "inf"})
            pipe.execute()
        for author in authors:
            for fan in fans:
                s.put(f"{urls['follows']}/v1/following/{author}", headers=r.auth(fan)).raise_for_status()
        store = redis.Redis.from_url(stack.settings.store_url("feed"))
        deadline = time.monotonic() + 120
        while any(store.zcard(f"followers:{{{a}}}") < len(fans) for a in authors):
            if time.monotonic() > deadline:
                raise RuntimeError("the feed did not learn the followers")
            time.sleep(0.2)
        return "feed", [("POST", "/v1/posts", authors[i % len(authors)], {"text": f"to my fans {i}"})
                        for i in range(n)]
    if write in ("like", "comment"):
        post = s.post(f"{urls['feed']}/v1/posts", json={"text": "react to this"}, headers=r.auth(r.member("op", 0)))
        post.raise_for_status()
        post_id = post.json()["id"]
        if write == "like":
            return "feed", [("PUT", f"/v1/posts/{post_id}/like", r.member("liker", i), None) for i in range(n)]
        return "feed", [("POST", f"/v1/posts/{post_id}/comments", r.member("commenter", i), {"text": f"nice {i}"})
                        for i in range(n)]
    raise ValueError(write)


def idle_rates(stack: Stack, seconds: float = 1.5) -> dict[str, float]:
    """CPU seconds per second each process spends with no requests (polls, leases, Kafka's own work)."""
    before, start = stack.cpu(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = stack.cpu(), time.monotonic() - start
    return {name: max(after[name] - before.get(name, 0.0), 0.0) / elapsed for name in after}


def measure(stack: Stack, service: str, script: str, seconds: int, connections: int) -> dict:
    """One wrk run and the event path's drain after it; CPU per 2xx request, less each process's idle use."""
    idle = idle_rates(stack)
    before, start = stack.cpu(), time.monotonic()
    result = run_wrk(stack.urls[service], script, seconds, connections)
    result["settle_s"] = stack.settle()
    after, elapsed = stack.cpu(), time.monotonic() - start
    done = max(result["ok"], 1)
    per_write = {name: round(max(after[name] - before.get(name, 0.0) - idle.get(name, 0.0) * elapsed, 0.0)
                             * 1000 / done, 3) for name in after}
    processes = {k: v for k, v in per_write.items() if "/" not in k}
    result["cpu_ms_per_request"] = dict(sorted(processes.items(), key=lambda kv: -kv[1]))
    result["cpu_ms_per_request_by_thread"] = {k: v for k, v in sorted(per_write.items()) if "/" in k and v > 0}
    result["cpu_ms_per_request_total"] = round(sum(processes.values()), 3)
    return result


# As many limits as the default (the same Redis calls per write), none of them reached.
BENCH_RATE_LIMITS = "100000/second;6000000/minute"

# The event path's batching settings, and what they were before (kafka-python's defaults and
# no relay linger): ``--compare`` measures both in one run.
BATCHED = {}
PER_EVENT = {"relay_linger_ms": 0, "consumer_fetch_wait_ms": 500, "consumer_fetch_min_bytes": 1}
# The first batching settings (relay linger 10 ms, fetches of up to 100 ms): ``--compare`` runs them too.
FIRST_BATCHING = {"relay_linger_ms": 10, "consumer_fetch_wait_ms": 100, "consumer_fetch_min_bytes": 16_384}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", nargs="*", choices=WRITES, default=list(WRITES))
    parser.add_argument("--compare", action="store_true",
                        help="also measure the event path per event (PER_EVENT) and with its first batching settings (FIRST_BATCHING), side by side")
    args = parser.parse_args()
    stop_on_sigterm()
    variants = ({"per_event": PER_EVENT, "first_batching": FIRST_BATCHING, "batched": BATCHED} if args.compare
                else {"batched": BATCHED})
    figures: dict = {"connections": args.connections, "seconds": args.seconds}
    for variant, overrides in variants.items():
        print(f"== {variant} {overrides}", flush=True)
        settings = bench_settings(write_rate_limits=BENCH_RATE_LIMITS, **overrides)
        figures[variant] = {"settings": overrides, **run_variant(settings, args)}
        write_results("write_cost", figures)  # after each variant: a long run keeps what it measured


def run_variant(settings: Settings, args) -> dict:
    figures: dict = {}
    with Stack(settings) as stack:
        health = HEALTHZ_LUA
        idle = idle_rates(stack, 3.0)  # what the stack costs with nothing to do: polls, fetches, leases
        figures["idle_cpu_ms_per_s"] = {k: round(v * 1000, 1) for k, v in sorted(idle.items(), key=lambda kv: -kv[1])
                                        if v >= 0.0005}
        figures["idle_cpu_ms_per_s_total"] = round(sum(v for k, v in idle.items() if "/" not in k) * 1000, 1)
        figures["healthz"] = measure(stack, "follows", health, args.seconds, args.connections)
        for write in args.only:
            r = Requests(settings, count=max(1500, args.seconds * 500))
            service, reqs = prepare(write, stack, r)
            stack.settle()
            figures[write] = measure(stack, service, lua_for(reqs, settings), args.seconds, args.connections)
            figures[write]["x_healthz_rps"] = round(figures[write]["rps"] / figures["healthz"]["rps"], 3)
            print(f"{write}: {figures[write]['rps']}/s, {figures[write]['cpu_ms_per_request_total']} ms CPU a write",
                  flush=True)
        figures["healthz_again"] = measure(stack, "follows", health, args.seconds, args.connections)
    return figures


if __name__ == "__main__":
    main()
