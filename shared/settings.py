"""Settings, read once from ``RAPPORT_*`` environment variables into a typed object.

The defaults serve the local stack started by ``rapport up``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

SERVICES = ("connections", "follows", "feed", "notifications", "profiles", "messaging")

REPO_ROOT = Path(__file__).resolve().parent.parent

# Published in the repository: accepted only where RAPPORT_ENV=local (see ``check_secrets``).
DEVELOPMENT_JWT_SECRET = "rapport-local-development-secret-change-me"
# What docker-compose.yml once filled in when RAPPORT_JWT_SECRET was unset: published as well.
COMPOSE_JWT_SECRET = "rapport-compose-secret-change-me"
PUBLISHED_JWT_SECRETS = frozenset({DEVELOPMENT_JWT_SECRET, COMPOSE_JWT_SECRET})

# The local server's 16 logical databases are all taken (the stack 0-3, benchmarks 4-7, tests
# 10-13, e2e 8, 9, 14, 15): profiles shares the follows database and messaging the notifications
# one. Every key of their stores starts with ``profiles:`` / ``messaging:`` (and their bus keys
# name the service), so they never meet; in compose and on a cluster each has a store of its own.
_DEFAULT_STORE_DB = {"connections": 0, "follows": 1, "feed": 2, "notifications": 3, "profiles": 1,
                     "messaging": 3}
_DEFAULT_PORTS = {"connections": 8001, "follows": 8002, "feed": 8003, "notifications": 8004, "profiles": 8005,
                  "messaging": 8006}
# Where each service's worker serves its Prometheus metrics (0: not at all).
_DEFAULT_WORKER_METRICS_PORTS = {"connections": 9101, "follows": 9102, "feed": 9103, "notifications": 9104,
                                 "profiles": 9105, "messaging": 9106}


@dataclass(frozen=True)
class Settings:
    # Infrastructure
    kafka_bootstrap: str = "127.0.0.1:9092"
    namespace: str = ""  # prefixes topics, consumer groups and bus keys: isolates test runs
    store_port: int = 6379
    cache_port: int = 6380
    store_urls: Mapping[str, str] = field(default_factory=dict)
    cache_url: str = ""
    ports: Mapping[str, int] = field(default_factory=lambda: dict(_DEFAULT_PORTS))
    # Where clients reach each API directly (the first of its OpenAPI document's servers);
    # default http://localhost:<port>.
    base_urls: Mapping[str, str] = field(default_factory=dict)
    worker_metrics_ports: Mapping[str, int] = field(default_factory=lambda: dict(_DEFAULT_WORKER_METRICS_PORTS))
    worker_metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, for the scraper
    run_dir: Path = REPO_ROOT / ".run"
    cache_dir: Path = Path.home() / ".cache" / "rapport"
    kafka_version: str = "4.1.1"
    topic_partitions: int = 6
    # Copies of each topic's partitions, and how many must have a record before Kafka
    # acknowledges it (the producers send acks=all): 3 and 2 on the cluster stack.
    topic_replication_factor: int = 1
    topic_min_insync_replicas: int = 1
    # A write answers 2xx only once this many replicas of its store's primary hold it (Redis
    # WAIT), at most store_replicas_ack_timeout_ms later, else 503: 1 on the cluster stack.
    store_replicas_ack: int = 0
    store_replicas_ack_timeout_ms: int = 1_000
    # `rapport up --cluster`: three Kafka nodes (each its client port and the next one, its
    # controller's), six Redis Cluster nodes, and the APIs, gateway and worker metrics at the
    # default ports plus cluster_port_offset; all under <run_dir>/cluster.
    cluster_kafka_ports: str = "19092,19094,19096"
    cluster_redis_ports: str = "17001,17002,17003,17004,17005,17006"
    cluster_port_offset: int = 100
    # Shards per store (shared/slots.py): every key carries its aggregate's shard tag. Fixed for
    # the life of a deployment: changing it moves every key.
    shards: int = 64
    # "local" for the local stack and the tests: the only place the development secret works.
    env: str = ""
    # Auth
    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    jwt_ttl_seconds: int = 24 * 3600
    # A token may be valid for at most this long after it was issued (and from now).
    jwt_max_lifetime_seconds: int = 24 * 3600
    # Tokens of an identity provider (RS256/ES256), verified against its JWKS. When a JWKS URL is
    # set, the shared secret is not accepted.
    jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    # HTTP
    # How long a request may take: gunicorn's timeout, and how long an Idempotency-Key stays
    # taken by a request that may still be running.
    request_timeout_seconds: int = 30
    idempotency_ttl_seconds: int = 24 * 3600
    # Writes (POST/PUT/PATCH/DELETE) per member and service, as `limits` rate strings separated
    # by ";" (empty: no limit).
    write_rate_limits: str = "30/second;900/minute"
    # Open notification streams per member, across processes: a new one closes the oldest.
    live_streams_per_member: int = 5
    # How long a stream ticket (POST /v1/notifications/stream-ticket) may wait to be used, once.
    stream_ticket_ttl_seconds: int = 60
    # Messaging: a send the replica of connections does not (yet) allow waits up to this long for
    # it to learn a connection just accepted, before answering 403 not_connected.
    messaging_connection_wait_ms: int = 1_000
    # Product limits (PRODUCT.md)
    reinvite_cooldown_days: int = 21
    invitation_weekly_limit: int = 100
    max_connections: int = 30_000
    fanout_threshold: int = 10_000
    # Members per feed.fanout batch: as many as the fan-out writes in one round (SCRIPT_BATCH), so
    # a batch's fixed costs (its event, record, dedup marker and a call per shard) are shared by
    # 2,000 inserts; 100,000 members still make 50 batches, 8 or 9 per partition of 6.
    fanout_batch_size: int = 2_000
    # Up to this many members the fan-out handler writes the timelines itself; the rest of a
    # bigger audience goes out in fanout_batch_size batches on the partitioned feed.fanout topic.
    fanout_inline_limit: int = 100_000
    inactive_days: int = 14
    timeline_cap: int = 800
    backfill_limit: int = 200
    notification_group_window_hours: int = 24
    notification_cap: int = 1_000
    # HTTP: request bodies above this many bytes are refused (413), by the APIs and the gateway.
    max_body_bytes: int = 1_048_576
    gateway_port: int = 8080  # the local stack's nginx in front of the APIs
    # Where clients reach the gateway (each API at <gateway_url>/<service>, the documents'
    # second server); default http://localhost:<gateway_port>.
    gateway_url: str = ""
    # Origins whose pages may call the APIs (CORS), comma-separated, "*" for any; empty: none.
    cors_origins: str = ""
    # Bus
    dedup_ttl_seconds: int = 7 * 24 * 3600
    consumer_commit_interval_ms: int = 1_000  # how often a consumer commits the offsets it is done with
    # A fetch waits up to this long for consumer_fetch_min_bytes of records: one fetch carries
    # many events under load instead of one (Kafka's and the consumers' cost is per fetch: about
    # 2.5 ms of a worker's CPU for an empty one, so an idle consumer costs ~10 ms a second at 250).
    consumer_fetch_wait_ms: int = 250
    consumer_fetch_min_bytes: int = 16_384
    # The relay waits this long after its first entries for more to join the batch: a produce
    # request costs the relay about 2.5 ms of CPU however few records it carries.
    relay_linger_ms: int = 50
    # When every outbox stream a relay holds was empty, it reads them all again after this long:
    # the most an idle relay adds to an event's way, and what bounds its idle cost.
    relay_idle_ms: int = 50
    # ... and, while they stay empty, ever longer up to this: what an idle relay costs falls
    # eightfold, and the first event after a quiet spell waits at most this long.
    relay_idle_max_ms: int = 400
    # ... once it has published nothing for this long: the events an event causes a moment
    # later (a post's fan-out batches) find it awake.
    relay_awake_ms: int = 1_000
    # A consumer stops (instead of dead-lettering on) past this many dead letters in a row on
    # one partition, or past this share of the last 1000 records it read. 0: no limit.
    dlq_max_consecutive: int = 100
    dlq_max_percent: int = 50
    log_level: str = "INFO"

    def store_url(self, service: str) -> str:
        return self.store_urls[service]

    def topic(self, name: str) -> str:
        """The Kafka topic name for ``name`` in this namespace."""
        return f"{self.namespace}.{name}" if self.namespace else name

    def group(self, name: str) -> str:
        """The consumer group id for ``name`` in this namespace."""
        return self.topic(name)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)

    def as_env(self) -> dict[str, str]:
        """``RAPPORT_*`` variables that make ``load_settings()`` in a child process give these settings."""
        env = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "store_urls":
                env.update({f"RAPPORT_{s.upper()}_STORE_URL": url for s, url in value.items()})
            elif f.name == "ports":
                env.update({f"RAPPORT_{s.upper()}_PORT": str(port) for s, port in value.items()})
            elif f.name == "base_urls":
                env.update({f"RAPPORT_{s.upper()}_BASE_URL": url for s, url in value.items()})
            elif f.name == "worker_metrics_ports":
                env.update({f"RAPPORT_{s.upper()}_WORKER_METRICS_PORT": str(port) for s, port in value.items()})
            else:
                env[f"RAPPORT_{f.name.upper()}"] = str(value)
        return env


class InsecureSettings(RuntimeError):
    """Settings a process must not start with."""


def check_secrets(settings: Settings) -> None:
    """Refuse a secret published in the repository (the development secret, compose's former
    default) outside the local stack (``RAPPORT_ENV=local``).

    A JWKS URL replaces the secret, so with one set the secret does not matter."""
    if settings.jwks_url or settings.env == "local":
        return
    if settings.jwt_secret in PUBLISHED_JWT_SECRETS:
        raise InsecureSettings(
            "RAPPORT_JWT_SECRET is published in the repository (the development secret or compose's former "
            "default): anyone can mint tokens with it. Set a secret of your own (or RAPPORT_JWKS_URL), "
            "or RAPPORT_ENV=local for the local stack.")


_MAPPINGS = ("store_urls", "ports", "worker_metrics_ports", "base_urls")  # one variable per service each


def _coerce(raw: str, kind):
    if kind is int:
        return int(raw)
    if kind is Path:
        return Path(raw)
    return raw


def load_settings(env: Mapping[str, str] | None = None, **overrides) -> Settings:
    """Read settings from ``env`` (default ``os.environ``); ``overrides`` win over both."""
    env = os.environ if env is None else env
    values: dict = {}
    hints = {f.name: f.type for f in dataclasses.fields(Settings)}
    for f in dataclasses.fields(Settings):
        if f.name in _MAPPINGS:
            continue
        raw = env.get(f"RAPPORT_{f.name.upper()}")
        if raw is not None and raw != "":
            kind = {"int": int, "Path": Path, "str": str}.get(str(hints[f.name]), str)
            try:
                values[f.name] = _coerce(raw, kind)
            except ValueError as exc:
                raise ValueError(f"RAPPORT_{f.name.upper()}={raw!r}: {exc}") from None
    values.update({k: v for k, v in overrides.items() if k not in _MAPPINGS})
    store_port = values.get("store_port", Settings.store_port)
    cache_port = values.get("cache_port", Settings.cache_port)
    store_urls = {
        s: env.get(f"RAPPORT_{s.upper()}_STORE_URL")
        or f"redis://127.0.0.1:{store_port}/{_DEFAULT_STORE_DB[s]}"
        for s in SERVICES
    }
    store_urls.update(overrides.get("store_urls", {}))
    ports = {s: int(env.get(f"RAPPORT_{s.upper()}_PORT") or _DEFAULT_PORTS[s]) for s in SERVICES}
    ports.update(overrides.get("ports", {}))
    metrics_ports = {s: int(env.get(f"RAPPORT_{s.upper()}_WORKER_METRICS_PORT") or _DEFAULT_WORKER_METRICS_PORTS[s])
                     for s in SERVICES}
    metrics_ports.update(overrides.get("worker_metrics_ports", {}))
    values["worker_metrics_ports"] = metrics_ports
    base_urls = {s: env.get(f"RAPPORT_{s.upper()}_BASE_URL") or f"http://localhost:{ports[s]}" for s in SERVICES}
    base_urls.update(overrides.get("base_urls", {}))
    values["base_urls"] = base_urls
    if not values.get("gateway_url"):
        values["gateway_url"] = f"http://localhost:{values.get('gateway_port', Settings.gateway_port)}"
    values["store_urls"] = store_urls
    values["ports"] = ports
    if not values.get("cache_url"):
        values["cache_url"] = f"redis://127.0.0.1:{cache_port}/0"
    return Settings(**values)
