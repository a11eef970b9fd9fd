"""The local stack's processes: the table of application processes, and how any process of
the stack (Kafka and Redis too) is started, found and stopped through its pid file.

The table is also what ``docker-compose.yml`` runs: a unit test holds both to the same argv.
This module must not import the services: it only names them.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from shared.settings import SERVICES, Settings

GUNICORN_CONF = "deploy/gunicorn.conf.py"

# Server-sent event streams stay open for minutes; each would pin a thread of a gthread
# worker, so the API that serves them runs gevent, where an idle stream costs a greenlet.
_WORKER_CLASS = {"notifications": "gevent", "messaging": "gevent"}


@dataclass(frozen=True)
class Process:
    """One application process; ``argv`` is the same locally and in compose."""

    name: str  # "<service>-api" or "<service>-worker", also the compose service name
    service: str
    kind: str  # "api" or "worker"
    argv: tuple[str, ...]
    copy: int = 1  # `rapport up --workers N`: workers 2..N of a service are copies of the first

    @property
    def marker(self) -> str:
        """A word of its command line, also in gunicorn's process title (see ``running_pid``)."""
        return f"services.{self.service}.app" if self.kind == "api" else f"worker {self.service}"


def _api(service: str) -> Process:
    # No --bind here: gunicorn.conf.py reads RAPPORT_BIND, so the argv needs no host or port.
    argv = ["gunicorn", "-c", GUNICORN_CONF]
    if service in _WORKER_CLASS:
        argv += ["--worker-class", _WORKER_CLASS[service]]
    argv.append(f"services.{service}.app:create_app()")
    return Process(f"{service}-api", service, "api", tuple(argv))


def _worker(service: str) -> Process:
    return Process(f"{service}-worker", service, "worker", ("rapport", "worker", service))


PROCESSES: tuple[Process, ...] = tuple(p for s in SERVICES for p in (_api(s), _worker(s)))


def with_workers(count: int) -> tuple[Process, ...]:
    """The table with ``count`` worker processes per service: ``<service>-worker``, then
    ``<service>-worker-2`` ... ``-<count>``, each a member of the service's consumer groups."""
    table = []
    for p in PROCESSES:
        table.append(p)
        if p.kind == "worker":
            table += [dataclasses.replace(p, name=f"{p.name}-{i}", copy=i) for i in range(2, count + 1)]
    return tuple(table)


def worker_copies_started(run_dir: Path) -> list[str]:
    """Names of the worker copies (``<service>-worker-<n>``) that have a pid file in ``run_dir``."""
    names = {f"{p.name}-" for p in PROCESSES if p.kind == "worker"}
    found = [f.stem for f in (run_dir / "pids").glob("*-worker-*.pid")]
    return sorted((n for n in found if any(n.startswith(prefix) and n[len(prefix):].isdigit() for prefix in names)),
                  key=lambda n: (n.rsplit("-", 1)[0], int(n.rsplit("-", 1)[1])))


def environment(process: Process, settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """The environment ``process`` runs with locally: ``base`` plus its bind address."""
    env = dict(base)
    env["PYTHONUNBUFFERED"] = "1"  # so a crash's traceback reaches the log file at once
    # The local stack says so: only then do the services accept the published development secret.
    env.setdefault("RAPPORT_ENV", "local")
    if process.kind == "api":
        env["RAPPORT_BIND"] = f"127.0.0.1:{settings.ports[process.service]}"
    if process.copy > 1:  # one metrics port per service and machine: the first worker serves it
        env[f"RAPPORT_{process.service.upper()}_WORKER_METRICS_PORT"] = "0"
    return env


# --- pid files --------------------------------------------------------------------------
# A pid file holds the pid and a word of the process's command line. Checking that word
# before signalling keeps a stale file (after a reboot, say) from naming someone else's pid.


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.pid"


def log_file(run_dir: Path, name: str) -> Path:
    return run_dir / "logs" / f"{name}.log"


def _alive(pid: int, marker: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X") and marker in cmdline


def exited(pid: int) -> bool:
    """Whether a process this stack just started has exited, judged by its pid alone.

    While a server rewrites its process title (redis-server, nginx do at start), its command
    line may briefly lack the marker that ``running_pid`` looks for; a process just spawned
    has no stale pid file to guard against, so its pid is enough.
    """
    _reap(pid)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def running_pid(run_dir: Path, name: str) -> int | None:
    """The pid of the stack's process ``name`` if it is running, else None."""
    path = pid_file(run_dir, name)
    try:
        pid_text, marker = path.read_text().split("\n")[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _alive(pid, marker) else None


def spawn(run_dir: Path, name: str, argv: Sequence[str], marker: str, *,
          env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` in the background in its own session, log to ``logs/<name>.log``.

    Its own session (so its own process group) lets ``stop`` reach the children too,
    e.g. gunicorn's workers. ``marker`` is a word of the command line (see ``running_pid``).
    """
    log_path = log_file(run_dir, name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_file(run_dir, name).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=None if env is None else dict(env), cwd=cwd, start_new_session=True)
    pid_file(run_dir, name).write_text(f"{proc.pid}\n{marker}\n")
    return proc.pid


def _reap(pid: int) -> None:
    # A process this interpreter started stays a zombie until waited for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for proc in Path("/proc").glob("[0-9]*"):  # killpg(0) also succeeds for zombies: look closer
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def stop(run_dir: Path, name: str, timeout: float = 20.0) -> int | None:
    """Stop the stack's process ``name`` and its process group: SIGTERM, then SIGKILL.

    Returns the pid it stopped, or None when it was not running. Removes the pid file.
    """
    pid = running_pid(run_dir, name)
    if pid is not None:
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if not _group_alive(pid):
                break
            time.sleep(0.1)
        else:
            print(f"  {name}: still running after {timeout:.0f}s, sending SIGKILL")
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.2)
            _reap(pid)
    pid_file(run_dir, name).unlink(missing_ok=True)
    return pid


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def port_in_use(host: str, port: int) -> bool:
    """Whether something accepts connections on ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def log_tail(run_dir: Path, name: str, lines: int = 40) -> str:
    """The last ``lines`` lines of ``name``'s log, for a failure message."""
    try:
        return "\n".join(log_file(run_dir, name).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
