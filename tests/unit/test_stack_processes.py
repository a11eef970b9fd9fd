"""The local stack's process table: one API and one worker per service, run the same way everywhere."""
from __future__ import annotations

import ast
from pathlib import Path

from shared.settings import SERVICES, load_settings
from shared.stack import processes
from shared.stack.processes import PROCESSES


def test_every_service_has_one_api_and_one_worker():
    kinds = sorted((p.service, p.kind) for p in PROCESSES)
    assert kinds == sorted((s, k) for s in SERVICES for k in ("api", "worker"))
    assert len({p.name for p in PROCESSES}) == len(PROCESSES)


def test_an_api_is_gunicorn_with_the_shared_config_and_the_service_app_factory():
    for p in (p for p in PROCESSES if p.kind == "api"):
        assert p.name == f"{p.service}-api"
        assert p.argv[:3] == ("gunicorn", "-c", "deploy/gunicorn.conf.py")
        assert p.argv[-1] == f"services.{p.service}.app:create_app()"
        assert not any(a.startswith(("-b", "--bind")) for a in p.argv), "the bind comes from RAPPORT_BIND"


def test_a_worker_is_the_rapport_worker_command():
    for p in (p for p in PROCESSES if p.kind == "worker"):
        assert p.name == f"{p.service}-worker"
        assert p.argv == ("rapport", "worker", p.service)


def test_the_notifications_api_serves_its_event_streams_with_gevent():
    api = next(p for p in PROCESSES if p.name == "notifications-api")
    assert api.argv[api.argv.index("--worker-class") + 1] == "gevent"


def test_the_messaging_api_serves_its_event_streams_with_gevent():
    api = next(p for p in PROCESSES if p.name == "messaging-api")
    assert api.argv[api.argv.index("--worker-class") + 1] == "gevent"


def test_locally_each_api_binds_its_own_port_on_loopback():
    settings = load_settings({}, ports={"feed": 9103})
    feed_api = next(p for p in PROCESSES if p.name == "feed-api")
    feed_worker = next(p for p in PROCESSES if p.name == "feed-worker")
    assert processes.environment(feed_api, settings, {"PATH": "/bin"})["RAPPORT_BIND"] == "127.0.0.1:9103"
    assert "RAPPORT_BIND" not in processes.environment(feed_worker, settings, {"PATH": "/bin"})


def test_the_process_table_does_not_import_the_services():
    source = Path(processes.__file__).read_text()
    imported = [n.module or "" for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.split(".")[0] == "services"]


def test_the_local_stack_tells_its_processes_they_run_locally():
    # Only with RAPPORT_ENV=local do the services accept the published development secret.
    settings = load_settings({})
    for p in PROCESSES:
        assert processes.environment(p, settings, {})["RAPPORT_ENV"] == "local"
