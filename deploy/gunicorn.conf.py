"""Gunicorn settings shared by every Rapport API, in the local stack and in docker-compose.

The bind address comes from ``RAPPORT_BIND`` (the local runner sets 127.0.0.1:<service port>,
the image 0.0.0.0:8000), so the command line is one and the same everywhere; see
``shared/stack/processes.py``. The command line may still override anything here.
"""
import logging
import os
import re
import shutil
import sys
import tempfile

from gunicorn.glogging import Logger

bind = os.environ.get("RAPPORT_BIND", "127.0.0.1:8000")

# gunicorn's rule of thumb, 2 x cores + 1: requests wait on Redis, and more processes overlap
# those waits past the GIL. Measured on 2 cores (bench/results): 5 processes served 1.6x the
# relationship lookups of 2 and 1.15x the feed reads, for ~20% fewer /healthz.
# WEB_CONCURRENCY overrides, as in gunicorn.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1) + 1)
# Requests mostly wait on Redis: threads overlap those waits at little cost.
worker_class = "gthread"
threads = int(os.environ.get("RAPPORT_GUNICORN_THREADS") or 4)
worker_connections = 1000  # gevent workers only (the notifications API, for its streams)

# The same setting tells how long an Idempotency-Key stays taken by a request that may still be
# running (shared/http/idempotency.py): a worker killed at this timeout frees its keys with it.
timeout = int(os.environ.get("RAPPORT_REQUEST_TIMEOUT_SECONDS") or 30)
# Short, so `rapport down` and container stops do not wait long on open event streams.
graceful_timeout = 10
keepalive = 5

# Slow clients: a gthread worker reads a request in one of its threads, so a client sending a
# byte now and then would hold that thread. Each read and write of a request gives up after
# this many seconds (the proxy in front sends whole requests at once; see deploy/nginx/).
client_timeout = float(os.environ.get("RAPPORT_GUNICORN_CLIENT_TIMEOUT") or 10)
# gunicorn's defaults, named: longer request lines (414) and header fields (431) are refused,
# as problem+json like every other error (shared/http/server.py).
limit_request_line = 4094
limit_request_field_size = 8190
limit_request_fields = 100

# Its default path is one per user, so four APIs on one machine would fight over it.
control_socket_disable = True

# gunicorn's access log stays off: the app writes one JSON line per request itself, with the
# request id, the member, the route template and the duration (shared/http/app.py).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("RAPPORT_LOG_LEVEL", "info").lower()


def _service(argv: list[str]) -> str:
    """The service this gunicorn serves, from its app argument (``services.<name>.app:...``)."""
    for arg in reversed(argv):
        found = re.match(r"services\.(\w+)\.app\b", arg)
        if found:
            return found.group(1)
    return "gunicorn"


class JsonLogger(Logger):
    """gunicorn's own lines (start-up, workers booting and exiting, errors) as the apps' JSON
    lines, with the service. A subclass rather than ``logconfig_dict``: a logging config turns
    gunicorn's access log on, which formats every request's atoms even when nothing writes them."""

    def setup(self, cfg):
        super().setup(cfg)
        from shared.logs import json_formatter  # structlog only: no prometheus_client before on_starting

        formatter = json_formatter(_service(sys.argv))
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
        # Warnings raised before the app configures its logs (gevent's, as a worker boots) too.
        logging.captureWarnings(True)
        warnings = logging.getLogger("py.warnings")
        warnings.handlers[:] = self.error_log.handlers
        warnings.propagate = False


logger_class = JsonLogger


def post_fork(server, worker):
    """Give this worker the project's rules for what gunicorn answers by itself (problem+json
    error pages, the client timeout). In the worker, not here at import: shared.http imports
    prometheus_client, which must come after on_starting has set PROMETHEUS_MULTIPROC_DIR."""
    from shared.http.server import install

    install(client_timeout)


def worker_exit(server, worker):
    """Flush and close this worker's Kafka producer, if it made one."""
    try:
        from shared.bus.producer import close_producer
    except ImportError:
        return
    close_producer()


def on_starting(server):
    """Give this API's worker processes one directory to count metrics in, so that /metrics adds
    up all of them (prometheus-client's multiprocess mode). Set before any worker imports it."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rapport-metrics-")
        os.environ["RAPPORT_METRICS_DIR_OWNED"] = "1"


def child_exit(server, worker):
    """A worker that is gone keeps its counts; its live gauges go."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.pop("RAPPORT_METRICS_DIR_OWNED", None):
        shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
