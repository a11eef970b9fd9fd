"""The local stack's machinery: process groups stop whole, pid files are checked, topics are idempotent."""
from __future__ import annotations

import os
import time

from kafka import KafkaAdminClient

from shared.bus.topics import all_topics, ensure_topics
from shared.stack import processes


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stopping_a_process_stops_its_children_too(tmp_path):
    # Like gunicorn: a parent that forks workers; stopping the parent's group must end both.
    pid = processes.spawn(tmp_path, "family", ["bash", "-c", "sleep 300 & echo $! > child; wait"],
                          marker="sleep 300", cwd=tmp_path)
    deadline = time.monotonic() + 5
    while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text().strip():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    child = int((tmp_path / "child").read_text())
    assert processes.running_pid(tmp_path, "family") == pid

    assert processes.stop(tmp_path, "family", timeout=5) == pid

    assert not _alive(pid) and not _alive(child)
    assert processes.running_pid(tmp_path, "family") is None
    assert not processes.pid_file(tmp_path, "family").exists()


def test_a_pid_file_naming_some_other_process_is_not_trusted(tmp_path):
    path = processes.pid_file(tmp_path, "stale")
    path.parent.mkdir(parents=True)
    path.write_text(f"{os.getpid()}\nredis-server\n")  # this pytest process is no redis-server

    assert processes.running_pid(tmp_path, "stale") is None
    assert processes.stop(tmp_path, "stale") is None  # and so is never signalled


def test_ensuring_topics_creates_them_once(infra):
    settings = infra.replace(namespace=f"{infra.namespace}-topics")
    try:
        assert sorted(ensure_topics(settings, partitions=2)) == sorted(all_topics(settings))
        assert ensure_topics(settings, partitions=2) == []
    finally:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
        try:
            admin.delete_topics(all_topics(settings))
        finally:
            admin.close()
