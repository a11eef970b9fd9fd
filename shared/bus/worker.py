"""A service's worker process: its outbox relay and its Kafka consumers, one thread each.

Each service's ``worker.py`` declares ``consumers(settings) -> list[Consumer]`` and,
optionally, ``resources(settings) -> dict`` (handed to handlers as ``effects.extra``) and
``tasks(settings) -> dict`` (name → ``fn(stop, store)``: loops that are not Kafka consumers,
e.g. draining a work queue in the store; each returns when ``stop`` is set).
``rapport worker <service>`` runs them; tests run the same thing in-process.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import signal
import threading
from dataclasses import dataclass, field

from prometheus_client import start_http_server

from shared.bus.consumer import ConsumerRunner
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.producer import close_producer, make_producer
from shared.logs import configure_logging, get_logger
from shared.settings import InsecureSettings, Settings, check_secrets
from shared import store_client

log = get_logger(__name__)


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (15 bytes at most) in the OS too, so that ``top -H``,
    ``ps -L`` and /proc show each part's CPU (the relay, each consumer) apart."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.pthread_setname_np(ctypes.c_ulong(threading.get_ident()), name.encode()[:15])
    except (OSError, AttributeError):  # not on Linux/glibc: the names are only a convenience
        pass


@dataclass
class Worker:
    service: str
    settings: Settings
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    ready: list[threading.Event] = field(default_factory=list)
    runners: list[ConsumerRunner] = field(default_factory=list)

    def start(self) -> "Worker":
        module = importlib.import_module(f"services.{self.service}.worker")
        store = store_client.connect(self.settings.store_url(self.service))
        outbox = Outbox(self.service, self.settings)
        extra = module.resources(self.settings) if hasattr(module, "resources") else {}
        # Every worker of the service runs a relay: together they cover all of its outbox streams.
        relay = OutboxRelay(outbox, store, lambda: make_producer(self.settings), linger_ms=self.settings.relay_linger_ms,
                            idle_ms=self.settings.relay_idle_ms,
                            idle_max_ms=self.settings.relay_idle_max_ms, awake_ms=self.settings.relay_awake_ms,
                            wakeable=True)
        self._spawn(f"{self.service}.relay", relay.run)
        for spec in module.consumers(self.settings):
            runner = ConsumerRunner(spec, self.settings, store, outbox, extra)
            self.runners.append(runner)
            ready = threading.Event()
            self.ready.append(ready)
            self._spawn(spec.name, runner.run, ready)
        for name, task in (module.tasks(self.settings) if hasattr(module, "tasks") else {}).items():
            self._spawn(name, task, store)
        return self

    def _spawn(self, name: str, target, *args) -> None:
        def run(*run_args):
            name_os_thread(name.split(".", 1)[-1])
            target(*run_args)
        thread = threading.Thread(target=run, args=(self.stop, *args), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until every consumer has its partitions assigned."""
        return all(event.wait(timeout) for event in self.ready)

    def halted(self) -> dict[str, str]:
        """The consumers their DLQ limit stopped (name → why); also the gauge ``rapport_consumer_halted``."""
        return {runner.spec.name: runner.halted for runner in self.runners if runner.halted}

    def shutdown(self, timeout: float = 15.0) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)


def serve_metrics(service: str, settings: Settings) -> None:
    """Serve this worker's Prometheus metrics (events handled, events relayed) on its port.

    A port already taken (a second worker of the service on one machine) costs the metrics of
    this one, not the worker: it logs and goes on.
    """
    port = settings.worker_metrics_ports[service]
    if not port:
        return
    try:
        start_http_server(port, addr=settings.worker_metrics_host)
        log.info("worker metrics served", port=port)
    except OSError as exc:
        log.warning("worker metrics not served", port=port, error=repr(exc))


def run_service_worker(service: str, settings: Settings) -> int:
    """Entry point of ``rapport worker <service>``: run until SIGTERM or SIGINT."""
    configure_logging(f"{service}-worker", settings.log_level)
    try:
        check_secrets(settings)
    except InsecureSettings as exc:
        log.error("refusing to start", reason=str(exc))
        return 2
    serve_metrics(service, settings)
    worker = Worker(service, settings).start()
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop.set())
    log.info("worker started", consumers=[t.name for t in worker.threads])
    while not worker.stop.wait(1.0):
        dead = [t.name for t in worker.threads if not t.is_alive()]
        if dead:
            log.error("worker thread died", threads=dead)
            worker.stop.set()
            worker.shutdown()
            return 1
    worker.shutdown()
    close_producer()  # flushes the DLQ producer, if this process made one
    log.info("worker stopped")
    return 0
