"""A worker's threads carry their part's name in the OS, so per-thread CPU can be told apart."""
from __future__ import annotations

import os
import threading

from shared.bus.worker import name_os_thread


def test_a_worker_thread_is_named_in_the_os_after_its_part():
    seen = {}

    def part():
        name_os_thread("notifications.inbox-and-more".split(".", 1)[-1])
        seen["comm"] = open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/comm").read().strip()

    thread = threading.Thread(target=part)
    thread.start()
    thread.join()
    assert seen["comm"] == "inbox-and-more"[:15]
