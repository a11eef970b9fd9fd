"""What every benchmark shares: settings apart from the local stack's, a service under
gunicorn, wrk runs, percentiles, and writing figures to ``bench/results/``.

Benchmarks run against the real Kafka and Redis (``rapport up --infra-only``).
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from kafka import KafkaAdminClient, TopicPartition
from kafka.protocol.consumer import OffsetSpec

from services.connections import store as suggestion_keys
from shared import members
from shared.auth import mint_token
from shared.bus.outbox import Outbox
from shared.bus.topics import drop_namespace, ensure_topics
from shared.settings import REPO_ROOT, SERVICES, Settings, load_settings
from shared.stack.processes import PROCESSES
from shared import store_client

RESULTS = REPO_ROOT / "bench" / "results"
BENCH_STORE_DB = {"connections": 4, "follows": 5, "feed": 6, "notifications": 7, "profiles": 5,
                  "messaging": 7}  # profiles and messaging share (see shared/settings.py)
BENCH_CACHE_DB = 2


# The Kafka namespaces this run made, dropped (groups, then topics) at exit, or by ``drop_namespaces``
# before the run stops a stack it started for itself (after it, nothing answers to drop them).
_namespaces: list[Settings] = []


def drop_namespaces() -> None:
    """Delete the consumer groups and topics of every namespace this run made so far."""
    while _namespaces:
        drop_namespace(_namespaces.pop())


atexit.register(drop_namespaces)


def bench_settings(**overrides) -> Settings:
    """Settings on the benchmark's own Redis databases and Kafka namespace."""
    base = load_settings()
    settings = base.replace(
        env=overrides.pop("env", base.env or "local"),  # benchmarks run the local stack's way
        namespace=f"bench-{uuid.uuid4().hex[:6]}",
        store_urls={s: f"redis://127.0.0.1:{base.store_port}/{db}" for s, db in BENCH_STORE_DB.items()},
        cache_url=f"redis://127.0.0.1:{base.cache_port}/{BENCH_CACHE_DB}",
        **overrides,
    )
    ensure_topics(settings)
    _namespaces.append(settings)  # a benchmark leaves no groups or topics behind
    return settings


def stop_on_sigterm() -> None:
    """SIGTERM ends a benchmark as Ctrl-C does, through its ``with`` blocks: the processes it
    started (APIs, workers) are stopped too, not left running."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process."""
    return {**os.environ, **settings.replace(log_level="WARNING").as_env()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers_healthz(base: str) -> bool:
    """Whether the API at ``base`` answers ``/healthz`` with 200 (within a second)."""
    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@contextlib.contextmanager
def served(service: str, settings: Settings, workers: int | None = None, threads: int | None = None,
           env: dict[str, str] | None = None, stderr=None):
    """Serve ``service``'s API exactly as the stack runs it (its command in
    ``shared.stack.processes``, so ``deploy/gunicorn.conf.py`` and its worker class) on a free
    port; yields its base URL and the gunicorn master's pid.

    ``workers`` and ``threads`` go through the variables the config reads (WEB_CONCURRENCY,
    RAPPORT_GUNICORN_THREADS); left out, the config's own defaults apply. ``env`` adds to its
    environment; ``stderr`` (a file) takes its logs.
    """
    [process] = [p for p in PROCESSES if p.service == service and p.kind == "api"]
    port = free_port()
    env = {**settings_env(settings), **(env or {}), "RAPPORT_BIND": f"127.0.0.1:{port}"}
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["RAPPORT_GUNICORN_THREADS"] = str(threads)
    argv = [sys.executable, "-m", *process.argv]  # "gunicorn -c deploy/gunicorn.conf.py ..."
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, start_new_session=True, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90  # a shared, busy machine starts five gunicorn workers slowly
        while not answers_healthz(base):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"gunicorn for {service} did not come up")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        # Asked to stop, gunicorn waits up to its graceful_timeout (10 s) for open streams to end:
        # after 2 s they are cut (SIGQUIT, its quick shutdown), as nothing here needs them.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGQUIT)
            proc.wait(15)


@contextlib.contextmanager
def gunicorn(service: str, settings: Settings, workers: int | None = None, threads: int | None = None):
    """``served``, yielding only the base URL."""
    with served(service, settings, workers=workers, threads=threads) as (base, _pid):
        yield base


def gunicorn_config(workers: int | None = None, threads: int | None = None) -> dict:
    """What deploy/gunicorn.conf.py gives with these overrides (to record beside the figures)."""
    env = {**os.environ}
    if workers:
        env["WEB_CONCURRENCY"] = str(workers)
    if threads:
        env["RAPPORT_GUNICORN_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-c", "import runpy, json; c = runpy.run_path('deploy/gunicorn.conf.py'); "
                          "print(json.dumps({k: c[k] for k in ('workers', 'worker_class', 'threads')}))"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live children (gunicorn's workers)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    ticks = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str | None = None, seconds: int = 10, connections: int = 32, threads: int = 2,
        method: str = "GET", body: str | None = None, paths: list[str] | None = None) -> dict:
    """Run wrk against ``url``; returns requests/s and latency percentiles (ms) and error counts.

    ``paths`` makes wrk cycle through several paths (e.g. random member pairs).
    """
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk (make bench does it)")
    lua = ["wrk.method = %s" % json.dumps(method)]
    if token:
        lua.append('wrk.headers["Authorization"] = "Bearer %s"' % token)
    if body is not None:
        lua.append("wrk.body = %s" % json.dumps(body))
        lua.append('wrk.headers["Content-Type"] = "application/json"')
    if paths:
        lua.append("local paths = {%s}" % ",".join(json.dumps(p) for p in paths))
        lua.append("local i = 0")
        lua.append("request = function() i = i % #paths + 1; return wrk.format(nil, paths[i]) end")
    lua.append("""done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %f %f %f %f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.mean))
end""")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lua))
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s",
                          script.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)", out)
    reqs, status_errors, socket_errors, duration_us, p50, p99, mean = match.groups()
    return {"requests": int(reqs), "non_2xx": int(status_errors), "socket_errors": int(socket_errors),
            "rps": round(int(reqs) / (float(duration_us) / 1e6), 1),
            "p50_ms": round(float(p50) / 1000, 3), "p99_ms": round(float(p99) / 1000, 3),
            "mean_ms": round(float(mean) / 1000, 3)}


def percentiles(samples_s: list[float]) -> dict:
    """p50/p99/max of durations given in seconds, reported in milliseconds."""
    if not samples_s:
        return {"n": 0}
    ordered = sorted(samples_s)

    def at(q):
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"n": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 3)}


class EventPath:
    """How far behind the event path is: each consumer group's committed offsets against the
    ends of its topics, and what waits in each service's outbox (and the connections worker's
    queue of suggestion lists to recompute).

    Committed offsets trail what a consumer has done by up to ``consumer_commit_interval_ms``
    (offsets are committed about once a second), so "caught up" here means handled and committed.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                      client_id="rapport-bench-lag")
        self.groups: dict[str, list[str]] = {}  # group id → its topics
        for service in SERVICES:
            for spec in importlib.import_module(f"services.{service}.worker").consumers(settings):
                self.groups[settings.group(spec.name)] = [settings.topic(t) for t in spec.topics]
        topics = sorted({t for ts in self.groups.values() for t in ts})
        self.partitions = [TopicPartition(topic["name"], p["partition_index"])
                           for topic in self.admin.describe_topics(topics) for p in topic["partitions"]]
        self.stores = {s: store_client.connect(settings.store_url(s), decode_responses=False) for s in SERVICES}
        self.outboxes = {s: Outbox(s, settings).key for s in SERVICES}

    def ends(self) -> dict[TopicPartition, int]:
        """The end offset of every partition the consumer groups read."""
        found = self.admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in self.partitions})
        return {tp: found[tp].offset for tp in self.partitions}

    def lag(self, ends: dict[TopicPartition, int] | None = None) -> dict[str, dict[TopicPartition, int]]:
        """Per group, how many records of each of its partitions it has not committed yet."""
        ends = ends if ends is not None else self.ends()
        committed = self.admin.list_group_offsets({g: None for g in self.groups})
        out = {}
        for group, topics in self.groups.items():
            offsets = committed.get(group, {})
            out[group] = {tp: max(ends[tp] - max(offsets[tp].offset if tp in offsets else 0, 0), 0)
                          for tp in self.partitions if tp.topic in topics}
        return out

    def waiting(self) -> int:
        """Entries in the outboxes, plus members queued for a suggestions recomputation."""
        total = 0
        for service, store in self.stores.items():
            total += store.xlen(self.outboxes[service])
        return total + self.stores["connections"].zcard(suggestion_keys.suggestions_due())

    def behind(self) -> int:
        """Records not yet committed by some group, plus what waits in the outboxes."""
        return self.waiting() + sum(sum(parts.values()) for parts in self.lag().values())

    def drain(self, timeout: float = 90.0, interval: float = 0.2) -> float:
        """Wait until nothing is behind, twice in a row (an outbox written between two checks
        shows on the second); returns the wait in seconds."""
        start = time.monotonic()
        clear = 0
        while time.monotonic() - start < timeout:
            clear = clear + 1 if self.behind() == 0 else 0
            if clear >= 2:
                break
            time.sleep(interval)
        return round(time.monotonic() - start, 2)

    def close(self) -> None:
        self.admin.close()


# The services that keep a member replica (shared/members.py).
REPLICAS = ("connections", "follows", "feed", "notifications", "messaging")
_registered: set[tuple[str, str]] = set()


def register(settings: Settings, ids) -> None:
    """Register members straight into every service's member replica, as a bulk load does:
    every write needs a registered caller, and acting towards a member a registered one."""
    fresh = [m for m in dict.fromkeys(ids) if (settings.store_url("follows"), m) not in _registered]
    if not fresh:
        return
    for service in REPLICAS:
        members.register_many(store_client.connect(settings.store_url(service), decode_responses=False), service, settings, fresh)
    _registered.update((settings.store_url("follows"), m) for m in fresh)


def token_for(settings: Settings, member: str) -> str:
    """A token for ``member``, registered first (see ``register``)."""
    register(settings, [member])
    return mint_token(member, settings.jwt_secret)


def write_results(name: str, figures: dict) -> Path:
    """Print ``figures`` and write them, with the machine they were measured on, to bench/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "figures": figures}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    print(f"written to {path.relative_to(REPO_ROOT)}")
    return path


def bench_cluster_settings(**overrides) -> Settings:
    """The cluster stack's settings (``rapport up --cluster``: every store and the cache on its
    Redis Cluster, Kafka on its three brokers) under the benchmark's own Kafka namespace; a
    Cluster has no databases, so the members' unique ids keep a run's keys apart."""
    from shared.stack import cluster

    base = cluster.settings_for(load_settings())
    settings = base.replace(env=overrides.pop("env", base.env or "local"), namespace=f"bench-{uuid.uuid4().hex[:6]}",
                            **overrides)
    ensure_topics(settings)
    _namespaces.append(settings)
    return settings


class StreamListeners:
    """Open server-sent event streams of ``path`` (one per member, each on its own thread) and
    time each delivery against the moment its key was marked sent: ``key(data)`` names what a
    ``data:`` line carries (a post id, a message's text), or None for what was not marked."""

    def __init__(self, base: str, path: str, settings: Settings, members: list[str], key):
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.responses: list = []
        opened = threading.Barrier(len(members) + 1)

        def listen(member: str):
            response = requests.get(f"{base}{path}", stream=True, timeout=(10, 30),
                                    headers={"Authorization": f"Bearer {token_for(settings, member)}"})
            self.responses.append(response)
            lines = response.iter_lines(chunk_size=None, decode_unicode=True)
            next(lines)  # the "retry:" line: the stream is open
            opened.wait()
            try:
                for line in lines:
                    if self.stop.is_set():
                        break
                    if line.startswith("data: "):
                        got = time.monotonic()
                        marked = key(json.loads(line[6:]))
                        with self.lock:
                            if marked in self.sent:
                                self.latencies.append(got - self.sent[marked])
            except (requests.RequestException, AttributeError):
                pass  # closed from the main thread at the end (urllib3 then finds its file gone)
            finally:
                response.close()

        for member in members:
            threading.Thread(target=listen, args=(member,), daemon=True).start()
        opened.wait(60)

    def mark(self, key: str) -> None:
        """``key`` is being sent now."""
        with self.lock:
            self.sent[key] = time.monotonic()

    def close(self, within: float = 10.0) -> list[float]:
        """Wait up to ``within`` seconds for every marked key's delivery, close the streams and
        give the delivery latencies (seconds)."""
        deadline = time.monotonic() + within
        while len(self.latencies) < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stop.set()
        for response in self.responses:
            response.close()
        return self.latencies


def round_trips(f) -> int:
    """How many times ``f`` writes to a Redis socket: one per command, pipeline or batch of reads."""
    import redis

    counted = [0]
    # Where the method is defined, and put back there: set on a subclass, the original would
    # shadow any later wrapping of the base class.
    owner = redis.connection.AbstractConnection
    send = owner.send_packed_command

    def counting(self, *args, **kwargs):
        counted[0] += 1
        return send(self, *args, **kwargs)
    owner.send_packed_command = counting
    try:
        f()
    finally:
        owner.send_packed_command = send
    return counted[0]
