"""Metrics an operator can trust: an API's /metrics counts the requests of all its gunicorn
processes, whichever answers; a worker serves its own metrics (events handled and relayed)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import requests
from kafka import KafkaProducer

from bench.support import free_port, served, settings_env
from shared.events import encode, new_event
from shared.settings import REPO_ROOT
from tests.support.infra import eventually, next_version

HEALTHZ_200 = re.compile(r'rapport_http_requests_total\{[^}]*endpoint="healthz"[^}]*status="200"[^}]*\} ([0-9.e+]+)')


def healthz_count(text: str) -> float:
    return sum(float(v) for v in HEALTHZ_200.findall(text))


def test_metrics_add_up_every_gunicorn_process_of_an_api(settings, monkeypatch):
    # Three sync processes (each takes a connection only when idle) and six clients at once:
    # the requests spread over all three.
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--worker-class sync")
    with served("follows", settings, workers=3) as (base, _pid):
        def hit(path: str) -> str:
            return requests.get(f"{base}{path}", headers={"Connection": "close"}).text

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(hit, ["/healthz"] * 60))
            reads = list(pool.map(hit, ["/metrics"] * 12))
    counts = [healthz_count(text) for text in reads]
    # One process's own count would fall short of 60 (and differ between processes).
    assert min(counts) >= 60 and len(set(counts)) == 1, counts


def test_a_worker_serves_the_events_it_handled_as_metrics(settings, unique):
    own = settings.replace(namespace=settings.namespace + "-metrics",
                           worker_metrics_ports={**settings.worker_metrics_ports, "notifications": free_port()})
    from shared.bus.topics import drop_topics, ensure_topics

    ensure_topics(own)
    port = own.worker_metrics_ports["notifications"]
    worker = subprocess.Popen([sys.executable, "-m", "shared.cli", "worker", "notifications"], cwd=REPO_ROOT,
                              env={**os.environ, **settings_env(own)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        event = new_event("follows", "follow.created", {"follower": unique("ada"), "followee": unique("grace"),
                                                        "reason": "explicit", "since": "2026-11-26T10:00:00.000Z",
                                                        "version": next_version()})
        producer = KafkaProducer(bootstrap_servers=own.kafka_bootstrap.split(","), acks="all")
        producer.send(own.topic("follows.events"), key=event.key.encode(), value=encode(event)).get(10)
        producer.close()

        def handled() -> bool:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except requests.RequestException:
                return False
            return 'rapport_events_handled_total{consumer="notifications.inbox",outcome="handled"} 1.0' in text

        eventually(handled, timeout=60, interval=0.2, message="the worker's metrics count the event")
    finally:
        worker.terminate()
        worker.wait(20)
        drop_topics(own)
