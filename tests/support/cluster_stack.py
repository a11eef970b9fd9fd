"""A cluster stack of the tests' own (``rapport up --cluster --infra-only`` on its own ports and
run folder: three Kafka JVMs and six Redis nodes, about a minute on this machine), started once
per session for every module that asks for it, and the services' real processes on it.

``own_cluster_stack`` is shared by ``test_cluster_stack.py`` and ``test_cluster_failover.py`` so
that a default-stack session starts one cluster, not two. Each module asks for it again
(``rapport up`` starts only what is not running), so a module that killed a node or stopped the
stack leaves a whole one to the next.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from shared.settings import REPO_ROOT, Settings, load_settings
from shared.stack import cluster, processes
from bench.support import answers_healthz
from tests.support.infra import free_ports

# Outside the default stack's ports and the cluster stack's defaults, and below the ephemeral
# range (a Redis node's cluster bus listens on its port + 10000).
KAFKA_PORTS = (19292, 19294, 19296)
REDIS_PORTS = (17301, 17302, 17303, 17304, 17305, 17306)


def rapport(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], check=False, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def _own_cluster_env(tmp_path_factory):
    env = {**os.environ, "RAPPORT_ENV": "local", "RAPPORT_RUN_DIR": str(tmp_path_factory.mktemp("run")),
           "RAPPORT_CLUSTER_KAFKA_PORTS": ",".join(map(str, KAFKA_PORTS)),
           "RAPPORT_CLUSTER_REDIS_PORTS": ",".join(map(str, REDIS_PORTS))}
    taken = [p for p in (*KAFKA_PORTS, *(p + 1 for p in KAFKA_PORTS), *REDIS_PORTS)
             if processes.port_in_use("127.0.0.1", p)]
    assert not taken, f"ports the tests' own cluster stack needs are taken: {taken}"
    try:
        yield env
    finally:
        rapport(env, "down", "--cluster")


@pytest.fixture(scope="module")
def own_cluster_stack(_own_cluster_env):
    """``(env, settings)`` of the tests' own cluster stack, whole (started or completed) for this
    module: ``env`` reproduces it for ``rapport``, ``settings`` are its cluster settings."""
    env = _own_cluster_env
    started = rapport(env, "up", "--cluster", "--infra-only")
    assert started.returncode == 0, started.stdout + started.stderr
    return env, cluster.settings_for(load_settings(env))


class ServiceProcesses:
    """Some services' APIs (gunicorn, as the stack runs them) and workers (``rapport worker``) on
    ``settings``, on free ports, with their pid files and logs in a folder of their own."""

    def __init__(self, settings: Settings, services: tuple[str, ...], api_workers: int = 1,
                 log_level: str = "WARNING"):
        self.run_dir = Path(tempfile.mkdtemp(prefix="rapport-services-"))
        ports = dict(zip(services, free_ports(len(services))))
        # No worker serves metrics: its port would be the stack's.
        self.settings = settings.replace(
            run_dir=self.run_dir, ports={**settings.ports, **ports},
            worker_metrics_ports={s: 0 for s in settings.worker_metrics_ports})
        self.services = services
        self.base_urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
        self.env = {**os.environ, **{k: v for k, v in self.settings.as_env().items() if v != ""},
                    "RAPPORT_LOG_LEVEL": log_level, "WEB_CONCURRENCY": str(api_workers)}
        self.table = [p for p in processes.PROCESSES if p.service in services]

    def start(self, timeout: float = 120.0) -> ServiceProcesses:
        bin_dir = Path(sys.executable).parent
        for p in self.table:
            local = bin_dir / p.argv[0]
            argv = [str(local) if local.exists() else p.argv[0], *p.argv[1:]]
            processes.spawn(self.run_dir, p.name, argv, p.marker,
                            env=processes.environment(p, self.settings, self.env), cwd=REPO_ROOT)
        deadline = time.monotonic() + timeout
        for service, base in self.base_urls.items():
            while not answers_healthz(base):
                dead = [p.name for p in self.table if processes.running_pid(self.run_dir, p.name) is None]
                if dead or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"{service} did not come up (exited: {dead}): "
                                         + "".join(processes.log_tail(self.run_dir, n) for n in dead))
                time.sleep(0.2)
        return self

    def stop(self) -> None:
        for p in reversed(self.table):
            processes.stop(self.run_dir, p.name)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {p.name} ({processes.log_file(self.run_dir, p.name)})\n"
                         f"{processes.log_tail(self.run_dir, p.name, lines)}" for p in self.table)
