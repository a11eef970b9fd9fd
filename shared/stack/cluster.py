"""The cluster stack, ``rapport up --cluster``: Kafka on three KRaft nodes (broker and controller
each) and a six-node Redis Cluster (three primaries, one replica each) serving every store and the
timeline cache, then the same APIs, workers and gateway as the default stack.

It runs beside the default stack: its own Kafka and Redis ports (``cluster_kafka_ports``,
``cluster_redis_ports``), the APIs, gateway and worker metrics at the default ports plus
``cluster_port_offset``, and everything under ``<run_dir>/cluster``. Topics there have three
replicas and ``min.insync.replicas=2``; a store write answers once one replica has it
(``store_replicas_ack=1``).
"""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
import string
import subprocess
import time
from pathlib import Path

from shared.bus.topics import ensure_topics
from shared.settings import Settings
from shared.stack import kafka, processes, redis
from shared.stack.redis import RedisServer

DEPLOY = kafka.REPO_ROOT / "deploy"
REDIS_NODES, KAFKA_NODES = 6, 3
# Three brokers on one machine: half the default stack's heap each.
KAFKA_JVM_OPTS = ["-Xmx512M", "-Xms512M", *kafka.JVM_OPTS[2:]]
KAFKA_STOP_TIMEOUT = 60.0


def _ports(text: str, count: int, setting: str) -> list[int]:
    ports = [int(p) for p in text.replace(" ", "").split(",") if p]
    if len(ports) != count:
        raise RuntimeError(f"RAPPORT_{setting.upper()} names {len(ports)} ports; the cluster stack needs {count}")
    return ports


def settings_for(settings: Settings) -> Settings:
    """The cluster stack's settings, derived from ``settings`` (the default stack's)."""
    kafka_ports = _ports(settings.cluster_kafka_ports, KAFKA_NODES, "cluster_kafka_ports")
    redis_ports = _ports(settings.cluster_redis_ports, REDIS_NODES, "cluster_redis_ports")
    offset = settings.cluster_port_offset
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in redis_ports)
    ports = {s: p + offset for s, p in settings.ports.items()}
    gateway_port = settings.gateway_port + offset
    return settings.replace(
        run_dir=settings.run_dir / "cluster",
        kafka_bootstrap=",".join(f"127.0.0.1:{p}" for p in kafka_ports),
        store_urls={s: url for s in settings.store_urls}, cache_url=url,
        ports=ports, base_urls={s: f"http://localhost:{p}" for s, p in ports.items()},
        gateway_port=gateway_port, gateway_url=f"http://localhost:{gateway_port}",
        worker_metrics_ports={s: p + offset if p else 0 for s, p in settings.worker_metrics_ports.items()},
        store_replicas_ack=1, topic_replication_factor=3, topic_min_insync_replicas=2)


def child_env(cluster: Settings) -> dict[str, str]:
    """The environment the cluster stack's APIs and workers read their settings from."""
    return {**os.environ, **{k: v for k, v in cluster.as_env().items() if v != ""}}


# --- Redis Cluster ------------------------------------------------------------------------


def redis_servers(cluster: Settings) -> list[RedisServer]:
    ports = [int(u.rsplit(":", 1)[1]) for u in cluster.cache_url.split("//", 1)[1].split(",")]
    return [RedisServer(f"redis-cluster-{i}", DEPLOY / "redis" / "cluster.conf", port)
            for i, port in enumerate(ports, start=1)]


def _redis_cli(port: int, *args: str, timeout: float = 30.0) -> str:
    done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                          text=True, timeout=timeout)
    return done.stdout + done.stderr


def cluster_info(port: int) -> dict[str, str]:
    """``CLUSTER INFO`` of the node on ``port`` (empty when it does not answer)."""
    try:
        text = _redis_cli(port, "cluster", "info", timeout=5)
    except subprocess.TimeoutExpired:
        return {}
    return dict(line.strip().split(":", 1) for line in text.splitlines() if ":" in line)


def form_cluster(servers: list[RedisServer], timeout: float = 60.0) -> None:
    """Join the nodes into one cluster of three primaries with a replica each (once; a restarted
    node finds its cluster again in its nodes.conf), then wait until every node says ok and
    every replica is in sync."""
    ports = [s.port for s in servers]
    if all(cluster_info(p).get("cluster_known_nodes") == "1" for p in ports):
        print(f"redis cluster: creating it from ports {', '.join(map(str, ports))}", flush=True)
        out = subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                              "--cluster-replicas", "1", "--cluster-yes"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{out.stdout}{out.stderr}")
    deadline = time.monotonic() + timeout
    while True:
        infos = [cluster_info(p) for p in ports]
        replication = [_redis_cli(p, "info", "replication", timeout=5) for p in ports]
        in_sync = all("role:master" in r or "master_link_status:up" in r for r in replication)
        if in_sync and all(i.get("cluster_state") == "ok" and i.get("cluster_known_nodes") == str(len(ports))
                           for i in infos):
            primaries = sum("role:master" in r for r in replication)
            print(f"redis cluster: ok, {primaries} primaries and {len(ports) - primaries} replicas")
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Redis Cluster is not ok after {timeout:.0f}s: "
                               + "; ".join(f"{p} {i.get('cluster_state', 'down')}" for p, i in zip(ports, infos)))
        time.sleep(0.3)


# --- Kafka on three nodes -------------------------------------------------------------------


def kafka_nodes(cluster: Settings) -> list[tuple[str, int, int]]:
    """``(name, node id, client port)`` of each broker; its controller listens on the next port."""
    return [(f"kafka-{i}", i, int(address.rsplit(":", 1)[1]))
            for i, address in enumerate(cluster.kafka_bootstrap.split(","), start=1)]


def _node_dir(cluster: Settings, name: str) -> Path:
    return cluster.run_dir / name


def render_kafka_config(cluster: Settings, name: str, node_id: int, port: int) -> Path:
    voters = ",".join(f"{i}@127.0.0.1:{p + 1}" for _, i, p in kafka_nodes(cluster))
    text = string.Template((DEPLOY / "kafka" / "cluster-server.properties").read_text()).substitute(
        node_id=node_id, voters=voters, host="127.0.0.1", port=port, controller_port=port + 1,
        log_dirs=_node_dir(cluster, name) / "data", num_partitions=cluster.topic_partitions)
    path = _node_dir(cluster, name) / "server.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _kafka_cluster_id(cluster: Settings) -> str:
    # One id for the three nodes, kept beside them so a restart formats nothing anew.
    path = cluster.run_dir / "kafka-cluster-id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(kafka._cluster_id())
    return path.read_text().strip()


def _format(cluster: Settings, name: str, config: Path) -> None:
    data = _node_dir(cluster, name) / "data"
    if (data / "meta.properties").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    argv = [kafka._java(), "-cp", kafka._classpath(cluster), *_kafka_logging(cluster, name),
            "kafka.tools.StorageTool", "format", "-t", _kafka_cluster_id(cluster), "-c", str(config),
            "--ignore-formatted"]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"formatting {name}'s storage failed:\n{done.stdout}")


def _kafka_logging(cluster: Settings, name: str) -> list[str]:
    return [f"-Dlog4j2.configurationFile={DEPLOY / 'kafka' / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={cluster.run_dir / 'logs' / name}"]


def start_kafka(cluster: Settings, timeout: float = 180.0) -> None:
    """Start the three nodes (together: a controller quorum needs two), wait for three brokers."""
    kafka.ensure_jars(cluster)
    pids = {}
    for name, node_id, port in kafka_nodes(cluster):
        pid = processes.running_pid(cluster.run_dir, name)
        if pid is not None:
            print(f"{name}: already running (pid {pid}) on port {port}")
            continue
        if processes.port_in_use("127.0.0.1", port):
            raise RuntimeError(f"{name}: port {port} is taken by a process rapport did not start")
        config = render_kafka_config(cluster, name, node_id, port)
        _format(cluster, name, config)
        argv = [kafka._java(), *KAFKA_JVM_OPTS, "-cp", kafka._classpath(cluster), *_kafka_logging(cluster, name),
                "kafka.Kafka", str(config)]
        pids[name] = processes.spawn(cluster.run_dir, name, argv, marker=str(config), cwd=cluster.run_dir)
        print(f"{name}: starting (pid {pids[name]}) on port {port}", flush=True)
    seconds = wait_brokers(cluster, KAFKA_NODES, timeout, pids)
    print(f"kafka: {KAFKA_NODES} brokers ready on {cluster.kafka_bootstrap} after {seconds:.1f}s")


def wait_brokers(cluster: Settings, count: int, timeout: float, pids: dict[str, int] | None = None) -> float:
    """Wait until the cluster's metadata lists ``count`` brokers; fail early if a node started here dies."""
    import logging

    from kafka import KafkaAdminClient

    started = time.monotonic()
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # refusals are expected while they start
    while True:
        for name, pid in (pids or {}).items():
            if processes.exited(pid):
                raise RuntimeError(f"{name} exited while starting; its log ends with:\n"
                                   + processes.log_tail(cluster.run_dir, name))
        try:
            admin = KafkaAdminClient(bootstrap_servers=cluster.kafka_bootstrap.split(","), client_id="rapport-stack",
                                     request_timeout_ms=5000)
            try:
                if len(admin.describe_cluster()["brokers"]) >= count:
                    return time.monotonic() - started
            finally:
                admin.close()
        except Exception:  # any client error means "not yet"
            pass
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"Kafka at {cluster.kafka_bootstrap}: not {count} brokers after {timeout:.0f}s")
        time.sleep(1.0)


# --- up, down, status ---------------------------------------------------------------------


def up(settings: Settings, infra_only: bool = False, apps_only: bool = False, health_timeout: float = 60.0,
       workers: int = 1) -> int:
    """Start whatever of the cluster stack is not running yet."""
    from shared.stack import runner

    cluster = settings_for(settings)
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("redis-server and redis-cli not found: install them (apt-get install redis-server)")
    with runner._exclusive(cluster):
        if not apps_only:
            start_kafka(cluster)
            servers = redis_servers(cluster)
            for server in servers:
                redis.start(cluster, server)
            form_cluster(servers)
        created = ensure_topics(cluster)
        print(f"topics: created {len(created)} (replication factor 3, min.insync.replicas 2)" if created
              else "topics: all present")
        if infra_only:
            print(f"cluster infrastructure ready: Kafka {cluster.kafka_bootstrap}, Redis Cluster {cluster.cache_url}; "
                  "`rapport down --cluster` stops it")
            return 0
        return runner.start_processes(cluster, health_timeout, processes.with_workers(workers), child_env(cluster))


def down(settings: Settings, keep_infra: bool = False) -> int:
    """Stop the cluster stack: gateway, APIs and workers, then Kafka's and Redis's nodes."""
    from shared.stack import runner

    cluster = settings_for(settings)
    with runner._exclusive(cluster):
        runner.stop_apps(cluster)
        if not keep_infra:
            # All three at once: stopped one by one, the last ones wait for a controller quorum
            # that is already gone, until the timeout.
            names = [name for name, _, _ in reversed(kafka_nodes(cluster))]
            with ThreadPoolExecutor(len(names)) as pool:
                pids = pool.map(lambda n: processes.stop(cluster.run_dir, n, timeout=KAFKA_STOP_TIMEOUT), names)
            for name, pid in zip(names, pids):
                if pid is not None:
                    print(f"{name}: stopped (pid {pid})")
            for server in reversed(redis_servers(cluster)):
                pid = processes.stop(cluster.run_dir, server.name)
                if pid is not None:
                    print(f"{server.name}: stopped (pid {pid})")
    print("cluster stack stopped" + (" (Kafka and Redis kept)" if keep_infra else ""))
    return 0


def anything_started(settings: Settings) -> bool:
    """Whether a pid file of the cluster stack names a running process."""
    run_dir = settings.run_dir / "cluster"
    return any(processes.running_pid(run_dir, f.stem) for f in (run_dir / "pids").glob("*.pid"))


def status(settings: Settings) -> None:
    from shared.stack import runner

    cluster = settings_for(settings)
    print(f"cluster stack ({cluster.run_dir}):")
    rows = [(name, port) for name, _, port in kafka_nodes(cluster)]
    rows += [(s.name, s.port) for s in redis_servers(cluster)]
    runner.print_rows(cluster, rows + runner.app_rows(cluster))


