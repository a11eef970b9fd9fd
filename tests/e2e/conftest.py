"""End-to-end tests: the real local stack — gunicorn APIs and workers as processes — over HTTP only.

The session starts its own stack with the README's command, ``rapport up --apps-only``, on
the Kafka and Redis already running (``make test`` starts them), and keeps out of everyone
else's way: free ports, a temporary run dir, its own Kafka namespace and its own Redis
databases. It stops everything it started and checks that nothing is left running.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from shared.auth import mint_token
from shared.bus.topics import drop_namespace
from shared.settings import REPO_ROOT, SERVICES, Settings, load_settings
from shared.stack import cluster
from shared.stack import processes
from shared.stack.processes import PROCESSES
from tests.support import members
from tests.conftest import TEST_STACK
from tests.support.infra import free_ports, require_infrastructure
from shared import store_client

# Apart from the local stack (0-3), the benchmarks (4-7, cache 2) and the integration tests (10-13, cache 1).
E2E_STORE_DB = {"connections": 8, "follows": 9, "feed": 14, "notifications": 15, "profiles": 9,
                "messaging": 15}  # profiles and messaging share (see shared/settings.py)
E2E_CACHE_DB = 3


def _rapport(*args: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "rapport"), *args], env=env, cwd=REPO_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _group_members(pgids: set[int]) -> list[int]:
    """Live processes in any of these process groups (gunicorn's forked workers, say)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] not in ("Z", "X"):
            found.append(int(proc.name))
    return found


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.ports[service]}{path}"

    def member(self, member_id: str) -> "Member":
        """A member of this stack, registered straight into its services' member replicas, as
        their workers would from member.registered."""
        members.register(self.settings, member_id)
        return Member(self, member_id)

    def rapport(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Run a ``rapport`` command against this stack."""
        return _rapport(*args, env=self.env, timeout=timeout)


class Member:
    """One member calling the stack's HTTP APIs with their own token: ``ada.get("feed", "/v1/feed")``."""

    def __init__(self, stack: Stack, member_id: str):
        self.id = member_id
        self.stack = stack
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {mint_token(member_id, stack.settings.jwt_secret)}"

    def __repr__(self) -> str:
        return self.id

    def call(self, method: str, service: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.stack.url(service, path), timeout=10, **kwargs)

    def get(self, service, path, **kw):
        return self.call("GET", service, path, **kw)

    def post(self, service, path, **kw):
        return self.call("POST", service, path, **kw)

    def put(self, service, path, **kw):
        return self.call("PUT", service, path, **kw)

    def patch(self, service, path, **kw):
        return self.call("PATCH", service, path, **kw)

    def delete(self, service, path, **kw):
        return self.call("DELETE", service, path, **kw)


# What the cluster stack changes of a process's settings (besides every store's URL).
CLUSTER_VARIABLES = ("RAPPORT_KAFKA_BOOTSTRAP", "RAPPORT_CACHE_URL", "RAPPORT_STORE_REPLICAS_ACK",
                     "RAPPORT_TOPIC_REPLICATION_FACTOR", "RAPPORT_TOPIC_MIN_INSYNC_REPLICAS")


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The whole application stack as real processes, started once for the session."""
    base = cluster.settings_for(load_settings()) if TEST_STACK == "cluster" else load_settings()
    require_infrastructure(base)
    run_dir = tmp_path_factory.mktemp("e2e-run")
    *service_ports, gateway_port = free_ports(len(SERVICES) + 1)
    ports = dict(zip(SERVICES, service_ports))
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    overrides = {
        "RAPPORT_NAMESPACE": namespace,
        "RAPPORT_RUN_DIR": str(run_dir),
        "RAPPORT_CACHE_URL": f"redis://127.0.0.1:{base.cache_port}/{E2E_CACHE_DB}",
        # Two cores shared with the rest of the tests: one gunicorn process per API is plenty.
        "WEB_CONCURRENCY": "1",
        "RAPPORT_GUNICORN_THREADS": "8",
        **{f"RAPPORT_{s.upper()}_PORT": str(port) for s, port in ports.items()},
        "RAPPORT_GATEWAY_PORT": str(gateway_port),
        **{f"RAPPORT_{s.upper()}_STORE_URL": f"redis://127.0.0.1:{base.store_port}/{db}"
           for s, db in E2E_STORE_DB.items()},
    }
    if TEST_STACK == "cluster":
        # The cluster stack's Kafka and its one Redis Cluster for every store and the cache
        # (no logical databases: the namespace and unique ids keep the session apart).
        cluster_settings = cluster.settings_for(base)
        overrides.update({k: v for k, v in cluster_settings.as_env().items()
                          if k in CLUSTER_VARIABLES or k.endswith("_STORE_URL")})
        # `rapport up --apps-only` first checks that a Redis answers on these: a cluster node does.
        first_node = str(store_client.cluster_nodes(cluster_settings.cache_url)[0][1])
        overrides.update(RAPPORT_STORE_PORT=first_node, RAPPORT_CACHE_PORT=first_node)
    env = {**os.environ, **overrides}
    settings = load_settings(env)
    stack = Stack(settings, env)

    started = stack.rapport("up", "--apps-only", timeout=120)
    pids = {name: processes.running_pid(run_dir, name) for name in [p.name for p in PROCESSES] + ["gateway"]}
    try:
        if started.returncode != 0:
            pytest.fail(f"`rapport up --apps-only` failed:\n{started.stdout}", pytrace=False)
        yield stack
    finally:
        stopped = stack.rapport("down", "--keep-infra", timeout=120)
        drop_namespace(settings)  # its groups and topics, once its workers are down
        if TEST_STACK != "cluster":  # a cluster's FLUSHDB would empty every primary, the whole stack
            for url in set(settings.store_urls.values()) | {settings.cache_url}:
                store_client.connect(url, decode_responses=False).flushdb()
        leftovers = _group_members({pid for pid in pids.values() if pid})
        busy = [port for port in [*ports.values(), gateway_port] if processes.port_in_use("127.0.0.1", port)]
        assert stopped.returncode == 0, f"`rapport down --keep-infra` failed:\n{stopped.stdout}"
        assert not leftovers and not busy, (f"the e2e stack left processes {leftovers} running "
                                            f"or ports {busy} open:\n{stopped.stdout}")
        assert not [pid for pid in pids.values() if pid and _alive(pid)]


@pytest.fixture
def member(stack, unique):
    """``member("ada")`` → a new, registered member of the e2e stack with a unique id."""
    return lambda name: stack.member(unique(name))
