"""A single-node Apache Kafka (KRaft, broker and controller in one JVM) for the local stack.

The broker's jars come from Maven Central through ``deploy/kafka/pom.xml``, once, into
``<cache_dir>/kafka/<version>/libs``; its data lives under ``<run_dir>/kafka``. Kafka's
command-line tools (``rapport kafka <tool>``) come the same way, on first use, through
``deploy/kafka/tools-pom.xml`` into ``<cache_dir>/kafka/<version>/tools``.
"""
from __future__ import annotations

import base64
import logging
import os
import shutil
import string
import subprocess
import sys
import time
import uuid
from pathlib import Path

from shared.settings import REPO_ROOT, Settings
from shared.stack import processes

NAME = "kafka"
DEPLOY = REPO_ROOT / "deploy" / "kafka"
_COMPLETE = ".complete"
JVM_OPTS = ["-Xmx1G", "-Xms1G", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35", "-Djava.awt.headless=true"]


# `rapport kafka <tool>`: the main class of each tool (Kafka's bin/kafka-<tool>.sh scripts run
# the same ones). All of them take --bootstrap-server.
TOOLS = {
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "topics": "org.apache.kafka.tools.TopicCommand",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "configs": "kafka.admin.ConfigCommand",
}
TOOLS_JVM_OPTS = ["-Xmx256M", "-XX:+UseSerialGC", "-Djava.awt.headless=true"]


def libs_dir(settings: Settings) -> Path:
    return settings.cache_dir / "kafka" / settings.kafka_version / "libs"


def tools_dir(settings: Settings) -> Path:
    """The jars Kafka's tools need beyond the broker's own (``libs_dir``)."""
    return settings.cache_dir / "kafka" / settings.kafka_version / "tools"


def data_dir(settings: Settings) -> Path:
    return settings.run_dir / "kafka" / "data"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def _classpath(settings: Settings) -> str:
    return f"{libs_dir(settings)}/*"  # the JVM expands the wildcard itself


def _logging(settings: Settings) -> list[str]:
    return [f"-Dlog4j2.configurationFile={DEPLOY / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={settings.run_dir / 'logs'}"]


def listener(settings: Settings) -> tuple[str, int]:
    """Host and port of the broker's client listener, from the first bootstrap address."""
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    return host, int(port)


def _resolve(pom: Path, folder: Path, version: str, marker: str, out=None) -> Path:
    """Copy ``pom``'s runtime dependencies with Maven into a scratch folder of this process
    beside ``folder`` (so an interrupted download never looks complete) and return it;
    ``marker`` (a glob) must be among them."""
    if shutil.which("mvn") is None:
        raise RuntimeError("mvn not found: install Maven (apt-get install maven) to fetch Kafka")
    print(f"resolving Kafka {version} jars ({pom.name}) from Maven Central into {folder} ...",
          file=out or sys.stdout, flush=True)
    scratch = folder.parent / f"{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    subprocess.run(["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
                    "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={scratch}",
                    f"-Dkafka.version={version}"], check=True, stdout=out, stderr=out)
    if not list(scratch.glob(marker)):
        raise RuntimeError(f"Maven finished but {scratch} holds no {marker}")
    return scratch


def _complete(scratch: Path, folder: Path, marker: Path) -> Path:
    if marker.exists() and folder.is_dir():  # another process finished first: keep its copy
        shutil.rmtree(scratch, ignore_errors=True)
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # what an interrupted run left
    scratch.rename(folder)
    marker.write_text(f"{len(list(folder.glob('*.jar')))} jars\n")
    return folder


def ensure_jars(settings: Settings) -> Path:
    """Resolve the broker's jars with Maven unless a complete copy is already cached."""
    libs = libs_dir(settings)
    if (libs.parent / _COMPLETE).exists() and libs.is_dir():
        return libs
    scratch = _resolve(DEPLOY / "pom.xml", libs, settings.kafka_version, "kafka_2.13-*.jar")
    return _complete(scratch, libs, libs.parent / _COMPLETE)


def ensure_tools(settings: Settings) -> Path:
    """Resolve Kafka's tools beside the broker's jars unless already cached; return their folder.

    A cache made before the tools were shipped has ``libs`` only: its tools are fetched now,
    into their own folder, without touching the broker's jars (a running broker reads them).
    Only the jars ``libs`` lacks are kept.
    """
    libs = ensure_jars(settings)
    tools = tools_dir(settings)
    marker = tools.parent / f"tools{_COMPLETE}"
    if marker.exists() and tools.is_dir():
        return tools
    scratch = _resolve(DEPLOY / "tools-pom.xml", tools, settings.kafka_version, "kafka-tools-*.jar",
                       out=sys.stderr)
    present = {jar.name for jar in libs.glob("*.jar")}
    for jar in scratch.glob("*.jar"):
        if jar.name in present:
            jar.unlink()
    return _complete(scratch, tools, marker)


def tool_argv(settings: Settings, tool: str, args: list[str]) -> list[str]:
    """The command line of Kafka's ``tool`` on the stack's broker: ``--bootstrap-server`` is
    the stack's (``RAPPORT_KAFKA_BOOTSTRAP``) unless ``args`` name one."""
    if tool not in TOOLS:
        raise ValueError(f"unknown Kafka tool {tool!r}: one of {', '.join(TOOLS)}")
    args = list(args)
    if not any(a == "--bootstrap-server" or a.startswith("--bootstrap-server=") for a in args):
        args = ["--bootstrap-server", settings.kafka_bootstrap, *args]
    classpath = f"{libs_dir(settings)}/*{os.pathsep}{tools_dir(settings)}/*"
    return [_java(), *TOOLS_JVM_OPTS, "-cp", classpath,
            f"-Dlog4j2.configurationFile={DEPLOY / 'tools-log4j2.properties'}", TOOLS[tool], *args]


def render_config(settings: Settings) -> Path:
    """Write ``server.properties`` for this run from the template in ``deploy/kafka``."""
    host, port = listener(settings)
    text = string.Template((DEPLOY / "server.properties").read_text()).substitute(
        host=host, port=port, controller_port=port + 1,
        log_dirs=data_dir(settings), num_partitions=settings.topic_partitions)
    path = settings.run_dir / "kafka" / "server.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _cluster_id() -> str:
    # What `kafka.tools.StorageTool random-uuid` prints (a URL-safe base64 UUID), without
    # paying for a JVM start; Kafka never hands out ids that begin with a dash.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def format_storage(settings: Settings) -> None:
    """Format the KRaft log dir once (static voters, so no ``--standalone``)."""
    config = render_config(settings)
    if (data_dir(settings) / "meta.properties").exists():
        return
    data_dir(settings).mkdir(parents=True, exist_ok=True)
    print(f"formatting Kafka storage in {data_dir(settings)}", flush=True)
    argv = [_java(), "-cp", _classpath(settings), *_logging(settings),
            "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config), "--ignore-formatted"]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"formatting Kafka storage failed:\n{done.stdout}")


def running_pid(settings: Settings) -> int | None:
    return processes.running_pid(settings.run_dir, NAME)


def port_open(settings: Settings) -> bool:
    """Whether something accepts connections on the broker's client listener."""
    return processes.port_in_use(*listener(settings))


def start(settings: Settings) -> int:
    """Start the broker in the background and return its pid (see ``wait_ready``)."""
    config = render_config(settings)
    argv = [_java(), *JVM_OPTS, "-cp", _classpath(settings), *_logging(settings), "kafka.Kafka", str(config)]
    return processes.spawn(settings.run_dir, NAME, argv, marker="kafka.Kafka", cwd=settings.run_dir)


def wait_ready(settings: Settings, timeout: float = 120.0, pid: int | None = None) -> float:
    """Wait until the broker answers an admin call; return the seconds it took.

    The listener opens only once the broker serves requests, so a socket check comes first
    (quietly), then ``list_topics``. If ``pid`` dies meanwhile, fail with its log's tail.
    """
    from kafka import KafkaAdminClient

    started = time.monotonic()
    next_report = started + 10
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)  # connection refusals are expected here
    try:
        while True:
            elapsed = time.monotonic() - started
            if pid is not None and processes.exited(pid):
                raise RuntimeError("Kafka exited while starting; its log ends with:\n"
                                   + processes.log_tail(settings.run_dir, NAME)
                                   + "\n(more in " + str(settings.run_dir / "logs" / "kafka-server.log") + ")")
            if port_open(settings):
                try:
                    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                             client_id="rapport-stack", bootstrap_timeout_ms=5000,
                                             request_timeout_ms=5000)
                    try:
                        admin.list_topics()
                        return elapsed
                    finally:
                        admin.close()
                except Exception:  # any client error just means "not yet"
                    pass
            if elapsed > timeout:
                raise TimeoutError(f"Kafka at {settings.kafka_bootstrap} not ready after {timeout:.0f}s")
            if time.monotonic() >= next_report:
                print(f"  waiting for Kafka at {settings.kafka_bootstrap} ... {elapsed:.0f}s", flush=True)
                next_report += 10
            time.sleep(0.5)
    finally:
        kafka_log.setLevel(level)
