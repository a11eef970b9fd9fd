"""The local stack's two Redis servers: the stores (AOF) and the timeline cache (no persistence).

Locally the four services share one store server on separate logical databases (see
``shared.settings``); in docker-compose each has its own.
"""
from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from shared.settings import REPO_ROOT, Settings
from shared.stack import processes


@dataclass(frozen=True)
class RedisServer:
    name: str  # also the pid and log file name
    conf: Path
    port: int


def servers(settings: Settings) -> tuple[RedisServer, RedisServer]:
    """The store server and the cache server, in start order."""
    deploy = REPO_ROOT / "deploy" / "redis"
    return (RedisServer("redis-store", deploy / "store.conf", settings.store_port),
            RedisServer("redis-cache", deploy / "cache.conf", settings.cache_port))


def _ping(port: int) -> bytes:
    # A bare socket: redis-py retries refused connections with backoff, seconds per probe.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16)
    except OSError:
        return b""


def answers(port: int) -> bool:
    """Whether a Redis on 127.0.0.1:``port`` answers PING."""
    return _ping(port).startswith(b"+PONG")


def loading(port: int) -> bool:
    """Whether a Redis on ``port`` is up but still loading its data (AOF) into memory."""
    return _ping(port).startswith(b"-LOADING")


def wait_loaded(port: int, name: str, alive=lambda: True, timeout: float = 600.0) -> None:
    """Wait while a started Redis loads its data: a large AOF takes a while, and nothing is
    wrong meanwhile. Says so every 10 s."""
    started = time.monotonic()
    next_report = started + 10
    while loading(port) and alive():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{name} still loading its data after {timeout:.0f}s")
        if time.monotonic() >= next_report:
            print(f"  {name}: loading its data ... {time.monotonic() - started:.0f}s", flush=True)
            next_report += 10
        time.sleep(0.2)


def start(settings: Settings, server: RedisServer, timeout: float = 15.0) -> None:
    """Start ``server`` unless it (or some other Redis on its port) already answers."""
    pid = processes.running_pid(settings.run_dir, server.name)
    if pid is not None:
        print(f"{server.name}: already running (pid {pid}) on port {server.port}")
        wait_loaded(server.port, server.name)
        return
    if answers(server.port):
        print(f"{server.name}: a Redis not started by rapport already answers on port {server.port}; using it")
        return
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server not found: install it (apt-get install redis-server)")
    data = settings.run_dir / server.name
    data.mkdir(parents=True, exist_ok=True)
    # daemonize no: rapport keeps the pid and stops it; the conf files stay free of paths.
    argv = ["redis-server", str(server.conf), "--port", str(server.port), "--bind", "127.0.0.1",
            "--dir", str(data), "--pidfile", str(data / "redis-server.pid"),
            "--logfile", str(processes.log_file(settings.run_dir, server.name)), "--daemonize", "no"]
    pid = processes.spawn(settings.run_dir, server.name, argv, marker="redis-server")
    deadline = time.monotonic() + timeout

    def alive() -> bool:
        return not processes.exited(pid)

    while not answers(server.port):
        if loading(server.port):
            wait_loaded(server.port, server.name, alive)
            continue
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not start; its log ends with:\n"
                               + processes.log_tail(settings.run_dir, server.name))
        time.sleep(0.1)
    print(f"{server.name}: started (pid {pid}) on port {server.port}")
