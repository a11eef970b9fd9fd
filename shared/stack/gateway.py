"""The local stack's gateway: nginx from the system (Debian's ``nginx`` package) in front of
the APIs, as in docker-compose, on ``gateway_port`` (8080).

Both run the same proxy rules and routes (``deploy/nginx/proxy.conf`` and ``routes.conf``);
only the wrapper differs: compose's ``deploy/nginx.conf`` names the API containers, the one
rendered here names 127.0.0.1 and each API's port, and keeps its pid, temporary files and
log under the run dir.
"""
from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from shared.settings import REPO_ROOT, SERVICES, Settings
from shared.stack import processes

NAME = "gateway"  # its pid and log file name, and its line in `rapport status`
NGINX_DIR = REPO_ROOT / "deploy" / "nginx"


def config_path(run_dir: Path) -> Path:
    return run_dir / NAME / "nginx.conf"


def render(settings: Settings, ports: dict[str, int] | None = None) -> str:
    """The local gateway's nginx.conf: the shared rules and routes, the APIs on loopback."""
    ports = dict(ports or settings.ports)
    home = settings.run_dir / NAME
    addresses = "\n".join(f"        set $rapport_{s}_api 127.0.0.1:{ports[s]};" for s in SERVICES)
    # Run as root (a container, CI), nginx would hand its workers to "nobody", who cannot
    # enter the run dir: keep them as the user who started the stack.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# Rendered by `rapport up` (shared/stack/gateway.py) from deploy/nginx/; do not edit.
{user}worker_processes 1;
daemon off;
pid {home / 'nginx.pid'};
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log /dev/stdout;
    client_max_body_size {settings.max_body_bytes};
    client_body_temp_path {home / 'client_body'};
    proxy_temp_path {home / 'proxy'};
    fastcgi_temp_path {home / 'fastcgi'};
    uwsgi_temp_path {home / 'uwsgi'};
    scgi_temp_path {home / 'scgi'};

    include {NGINX_DIR / 'proxy.conf'};

    server {{
        listen 127.0.0.1:{settings.gateway_port};
        # Where routes.conf sends each service: addresses, so no resolver is needed.
{addresses}
        include {NGINX_DIR / 'routes.conf'};
    }}
}}
"""


def nginx_binary() -> str:
    """Where nginx is: on PATH, or in /usr/sbin where Debian puts it (off a user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("nginx not found: install it (apt-get install nginx)")
    return found


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(settings: Settings, timeout: float = 60.0) -> int:
    """Start the gateway unless it runs already; return its pid."""
    pid = processes.running_pid(settings.run_dir, NAME)
    if pid is not None:
        print(f"{NAME}: already running (pid {pid}) on port {settings.gateway_port}")
        return pid
    if processes.port_in_use("127.0.0.1", settings.gateway_port):
        raise RuntimeError(f"{NAME}: port {settings.gateway_port} is taken by a process rapport did not start")
    conf = config_path(settings.run_dir)
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(render(settings))
    # -e: nginx opens its error log before it reads the config; -p: relative paths under it.
    argv = [nginx_binary(), "-c", str(conf), "-p", str(conf.parent), "-e", "stderr"]
    pid = processes.spawn(settings.run_dir, NAME, argv, marker=str(conf))
    deadline = time.monotonic() + timeout
    while not healthy(settings.gateway_port):
        if processes.exited(pid) or time.monotonic() > deadline:
            processes.stop(settings.run_dir, NAME)
            raise RuntimeError(f"{NAME} did not start; its log ends with:\n"
                               + processes.log_tail(settings.run_dir, NAME))
        time.sleep(0.1)
    print(f"{NAME}: started (pid {pid}) on port {settings.gateway_port}")
    return pid


def stop(settings: Settings) -> int | None:
    return processes.stop(settings.run_dir, NAME)
