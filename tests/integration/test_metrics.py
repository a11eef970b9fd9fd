"""Metrics an operator can trust: an API's /metrics counts the requests of all its gunicorn
processes, whichever answers; a worker serves its own metrics (events handled and relayed, its
consumers' lag, its outbox's depth)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from kafka import KafkaProducer
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bench.support import free_port, served, settings_env, token_for
from shared import store_client
from shared.bus.outbox import Outbox, OutboxRelay
from shared.events import encode, new_event
from shared.settings import REPO_ROOT
from tests.support.infra import eventually, next_version

HEALTHZ_200 = re.compile(r'rapport_http_requests_total\{[^}]*endpoint="healthz"[^}]*status="200"[^}]*\} ([0-9.e+]+)')


def healthz_count(text: str) -> float:
    return sum(float(v) for v in HEALTHZ_200.findall(text))


def sample(text: str, name: str, **labels) -> float | None:
    """The value of the sample ``name`` with exactly ``labels`` in Prometheus text, if there is one."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return None


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


def test_a_worker_serves_the_events_it_handled_by_topic_their_handling_time_and_its_consumers_lag(
        settings, unique):
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
        sent = producer.send(own.topic("follows.events"), key=event.key.encode(), value=encode(event)).get(10)
        producer.close()
        where = {"consumer": "notifications.inbox", "topic": own.topic("follows.events")}

        def handled() -> str:
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
            except requests.RequestException:
                return ""
            # The lag is refreshed about once a second, after the poll that handled the event.
            lag = sample(text, "rapport_consumer_lag", **where, partition=str(sent.partition))
            return text if sample(text, "rapport_events_handled_total", **where, outcome="handled") == 1 \
                and lag == 0 else ""

        text = eventually(handled, timeout=60, interval=0.2, message="the worker's metrics count the event")
        assert sample(text, "rapport_event_handle_seconds_count", **where) == 1
        assert sample(text, "rapport_outbox_depth", service="notifications") is not None
    finally:
        worker.terminate()
        worker.wait(20)
        drop_topics(own)


def test_a_relay_reports_the_entries_waiting_in_the_streams_it_holds(settings):
    outbox = Outbox(f"depth-test-{uuid.uuid4().hex[:6]}", settings)
    store = store_client.connect(settings.store_url("follows"))
    relay = OutboxRelay(outbox, store, producer_factory=lambda: None)
    stream = outbox.streams()[-1].key  # a shard's
    try:
        store.xadd(stream, {"topic": "unused", "key": "", "value": "{}"})
        relay._holds_lease(fresh=True)  # a lease round: takes the streams, measures them
        assert REGISTRY.get_sample_value("rapport_outbox_depth", {"service": outbox.service}) == 1
        store.delete(stream)
        relay._holds_lease(fresh=True)
        assert REGISTRY.get_sample_value("rapport_outbox_depth", {"service": outbox.service}) == 0
    finally:
        relay.release()
        store.delete(*[key for stream in outbox.streams() for key in (stream.key, stream.lease_key)],
                     outbox.relays_key)
        store.close()


def open_streams(base: str) -> float | None:
    return sample(requests.get(f"{base}/metrics", timeout=5).text, "rapport_live_streams_open",
                  service="notifications")


def test_an_api_counts_the_live_streams_open_over_all_its_processes(settings):
    token = token_for(settings, f"ada-{uuid.uuid4().hex[:8]}")
    with served("notifications", settings, workers=2) as (base, _pid):
        stream = requests.get(f"{base}/v1/notifications/stream", headers={"Authorization": f"Bearer {token}"},
                              stream=True, timeout=10)
        assert stream.status_code == 200
        next(stream.iter_content(chunk_size=None))  # the stream is open: its first bytes came
        # Whichever of the two processes answers /metrics counts the stream the other may hold.
        assert {open_streams(base) for _ in range(6)} == {1.0}
        stream.close()
        # The server notices the client went at its next keep-alive (5 s).
        eventually(lambda: open_streams(base) == 0.0, timeout=30, interval=0.5,
                   message="the closed stream is no longer counted")
