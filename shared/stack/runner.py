"""``rapport up``, ``down`` and ``status``: the local stack, started and stopped in order.

Up: Kafka (and its topics), the Redis store and cache, then every process of
``shared.stack.processes.PROCESSES`` (with ``--workers N``, N workers per service), then the
gateway in front of the APIs (nginx, ``shared.stack.gateway``). ``--cluster``: the cluster
stack instead (``shared.stack.cluster``). Down: the same, in reverse. Everything started has a
pid file under ``<run_dir>/pids`` and a log under ``<run_dir>/logs``.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from shared.bus.topics import ensure_topics
from shared.settings import REPO_ROOT, Settings
from shared.stack import gateway, kafka, processes, redis
from shared.stack.processes import PROCESSES, Process

INFRA = ("kafka", "redis-store", "redis-cache")  # start order
STOP_TIMEOUT = {"kafka": 60.0}  # a controlled shutdown takes a few seconds; the rest is quick


@contextlib.contextmanager
def _exclusive(settings: Settings):
    # Two `up`s at once (a developer and a test run, say) would both see a server missing
    # and both start it: one at a time.
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / "stack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(settings: Settings, infra_only: bool = False, health_timeout: float = 60.0,
       apps_only: bool = False, cluster: bool = False, workers: int = 1) -> int:
    """Start whatever of the stack is not running yet; return a process exit code.

    ``apps_only`` starts no Kafka or Redis: it uses those already running (a second stack on
    other ports, run dir, namespace and databases, as the e2e tests do) and fails if absent.
    ``cluster``: the cluster stack instead (``shared.stack.cluster``), beside the default one.
    ``workers``: worker processes per service.
    """
    if infra_only and apps_only:
        raise RuntimeError("--infra-only and --apps-only exclude each other")
    if workers < 1:
        raise RuntimeError("--workers takes a number from 1")
    if cluster:
        from shared.stack import cluster as cluster_stack

        return cluster_stack.up(settings, infra_only=infra_only, apps_only=apps_only,
                                health_timeout=health_timeout, workers=workers)
    with _exclusive(settings):
        return _up(settings, infra_only, health_timeout, apps_only, workers)


def _up(settings: Settings, infra_only: bool, health_timeout: float, apps_only: bool = False,
        workers: int = 1) -> int:
    if apps_only:
        _require_infra(settings)
    else:
        _start_kafka(settings)
    created = ensure_topics(settings)
    print(f"topics: created {', '.join(created)}" if created else "topics: all present")
    if not apps_only:
        for server in redis.servers(settings):
            redis.start(settings, server)
    if infra_only:
        print("infrastructure ready (Kafka, Redis); `rapport down` stops it")
        return 0
    return _start_processes(settings, health_timeout, processes.with_workers(workers))


def down(settings: Settings, keep_infra: bool = False, cluster: bool | None = None) -> int:
    """Stop the stack in reverse start order, each process with its whole process group.

    ``cluster``: None stops the default stack and then the cluster stack if any of it runs;
    True the cluster stack only; False the default stack only."""
    from shared.stack import cluster as cluster_stack

    code = 0
    if not cluster:
        with _exclusive(settings):
            code = _down(settings, keep_infra)
    if cluster or (cluster is None and cluster_stack.anything_started(settings)):
        code = cluster_stack.down(settings, keep_infra=keep_infra) or code
    return code


def stop_apps(settings: Settings) -> None:
    """Stop the gateway, then every API and worker (worker copies too), in reverse start order."""
    names = [gateway.NAME] + list(reversed(processes.worker_copies_started(settings.run_dir))) \
        + [p.name for p in reversed(PROCESSES)]
    for name in names:
        pid = processes.stop(settings.run_dir, name, timeout=STOP_TIMEOUT.get(name, 20.0))
        if pid is not None:
            print(f"{name}: stopped (pid {pid})")


def _down(settings: Settings, keep_infra: bool) -> int:
    # The gateway first: no request reaches an API that is on its way down.
    stop_apps(settings)
    names = [] if keep_infra else list(reversed(INFRA))
    for name in names:
        pid = processes.stop(settings.run_dir, name, timeout=STOP_TIMEOUT.get(name, 20.0))
        if pid is not None:
            print(f"{name}: stopped (pid {pid})")
    if not keep_infra:
        for server in redis.servers(settings):
            if redis.answers(server.port):
                print(f"{server.name}: a Redis not started by rapport still answers on port {server.port}; left alone")
    print("stack stopped" + (" (Kafka and Redis kept)" if keep_infra else ""))
    return 0


def status(settings: Settings, cluster: bool | None = None) -> int:
    """Print one line per process of the stack: running or stopped, pid, port.

    ``cluster``: None the default stack, then the cluster stack if any of it was started; True
    the cluster stack only."""
    from shared.stack import cluster as cluster_stack

    if not cluster:
        rows = [("kafka", kafka.listener(settings)[1]), *((s.name, s.port) for s in redis.servers(settings))]
        print_rows(settings, rows + app_rows(settings))
    if cluster or (cluster is None and cluster_stack.anything_started(settings)):
        cluster_stack.status(settings)
    return 0


def app_rows(settings: Settings) -> list[tuple[str, int | None]]:
    """The status rows of the APIs, the workers (and their copies) and the gateway."""
    copies = processes.worker_copies_started(settings.run_dir)
    rows = []
    for p in PROCESSES:
        rows.append((p.name, settings.ports[p.service] if p.kind == "api" else None))
        rows += [(name, None) for name in copies if name.startswith(f"{p.name}-")] if p.kind == "worker" else []
    return rows + [(gateway.NAME, settings.gateway_port)]


def print_rows(settings: Settings, rows: list[tuple[str, int | None]]) -> None:
    for name, port in rows:
        pid = processes.running_pid(settings.run_dir, name)
        state = "running" if pid else ("external" if port and _port_answers(name, port, settings) else "stopped")
        print(f"{name:<24} {state:<8} pid {pid or '-':<8} port {port or '-'}")


def _port_answers(name: str, port: int, settings: Settings) -> bool:
    if name.startswith("kafka"):
        return processes.port_in_use("127.0.0.1", port)
    if name.startswith("redis-"):
        return redis.answers(port)
    return _healthy(port)


def _start_kafka(settings: Settings) -> None:
    pid = kafka.running_pid(settings)
    if pid is not None:
        print(f"kafka: already running (pid {pid}) on {settings.kafka_bootstrap}")
        kafka.wait_ready(settings, pid=pid)
        return
    if kafka.port_open(settings):
        print(f"kafka: a broker not started by rapport listens on {settings.kafka_bootstrap}; using it")
        kafka.wait_ready(settings)
        return
    kafka.ensure_tools(settings)  # the broker's jars, then its tools (`rapport kafka`) beside them
    kafka.format_storage(settings)
    pid = kafka.start(settings)
    print(f"kafka: starting (pid {pid}), log in {settings.run_dir / 'logs'}", flush=True)
    seconds = kafka.wait_ready(settings, pid=pid)
    print(f"kafka: ready on {settings.kafka_bootstrap} after {seconds:.1f}s")


def _require_infra(settings: Settings) -> None:
    # --apps-only: someone else runs Kafka and Redis; say plainly when they are not there.
    missing = [f"Kafka at {settings.kafka_bootstrap}"] if not kafka.port_open(settings) else []
    missing += [f"{s.name} on port {s.port}" for s in redis.servers(settings) if not redis.answers(s.port)]
    if missing:
        raise RuntimeError(f"not reachable: {', '.join(missing)}; start them with `rapport up --infra-only`")
    kafka.wait_ready(settings, timeout=30)


def _executable(name: str) -> str:
    # The tools of this interpreter's environment first (the venv's gunicorn and rapport),
    # so the stack runs the code `rapport` itself was installed with.
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def start_processes(settings: Settings, health_timeout: float, table: tuple[Process, ...] = PROCESSES,
                    base_env: dict[str, str] | None = None) -> int:
    """Start the APIs and workers of ``table`` and the gateway; ``base_env`` (default this
    process's environment) is what they read their settings from."""
    return _start_processes(settings, health_timeout, table, base_env)


def _start_processes(settings: Settings, health_timeout: float, table: tuple[Process, ...] = PROCESSES,
                     base_env: dict[str, str] | None = None) -> int:
    # A port held by someone else would answer our health checks while our API fails to bind.
    if processes.running_pid(settings.run_dir, gateway.NAME) is None \
            and processes.port_in_use("127.0.0.1", settings.gateway_port):
        raise RuntimeError(f"{gateway.NAME}: port {settings.gateway_port} is taken by a process rapport did not start")
    gateway.nginx_binary()  # missing: say so before starting anything
    for p in table:
        port = settings.ports[p.service]
        if p.kind == "api" and processes.running_pid(settings.run_dir, p.name) is None \
                and processes.port_in_use("127.0.0.1", port):
            raise RuntimeError(f"{p.name}: port {port} is taken by a process rapport did not start")
    started: list[Process] = []
    for p in table:
        pid = processes.running_pid(settings.run_dir, p.name)
        if pid is not None:
            print(f"{p.name}: already running (pid {pid})")
            continue
        argv = [_executable(p.argv[0]), *p.argv[1:]]
        pid = processes.spawn(settings.run_dir, p.name, argv, p.marker,
                              env=processes.environment(p, settings, os.environ if base_env is None else base_env),
                              cwd=REPO_ROOT)
        started.append(p)
        print(f"{p.name}: started (pid {pid})", flush=True)
    failed = _wait_healthy(settings, health_timeout, any(p.kind == "worker" for p in started), table)
    if not failed:
        try:
            gateway.start(settings)
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            failed = [gateway.NAME]
    if not failed:
        apis = ", ".join(f"{p.service} :{settings.ports[p.service]}" for p in PROCESSES if p.kind == "api")
        print(f"stack up: {apis}, all behind the gateway on :{settings.gateway_port} "
              f"(/<service>/v1/...); `rapport status` lists it, `rapport down` stops it")
        return 0
    for name in (n for n in failed if n != gateway.NAME):
        print(f"\n{name} failed; the end of {processes.log_file(settings.run_dir, name)}:\n"
              + processes.log_tail(settings.run_dir, name), file=sys.stderr)
    # Leave no half-started application behind (Kafka and Redis stay up for the next try).
    for p in reversed(started):
        processes.stop(settings.run_dir, p.name)
    print(f"\nrapport up failed: {', '.join(failed)}", file=sys.stderr)
    return 1


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_healthy(settings: Settings, timeout: float, workers_started: bool,
                  table: tuple[Process, ...] = PROCESSES) -> list[str]:
    """Wait for every API's /healthz; return the names of processes that died or never answered."""
    began = time.monotonic()
    failed: list[str] = []
    pending = [p for p in PROCESSES if p.kind == "api"]
    while pending and time.monotonic() - began < timeout:
        for p in list(pending):
            if processes.running_pid(settings.run_dir, p.name) is None:
                failed.append(p.name)
                pending.remove(p)
            elif _healthy(settings.ports[p.service]):
                print(f"{p.name}: healthy on port {settings.ports[p.service]}")
                pending.remove(p)
        time.sleep(0.2)
    failed += [p.name for p in pending]
    if workers_started:  # workers have no endpoint: give them a moment to fail on a bad import
        time.sleep(max(0.0, 3.0 - (time.monotonic() - began)))
    failed += [p.name for p in table
               if p.kind == "worker" and processes.running_pid(settings.run_dir, p.name) is None]
    return failed
