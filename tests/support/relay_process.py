"""A service's outbox relay alone in a process of its own, for tests that kill or freeze it.

Run: python -m tests.support.relay_process <service> <lease_ms> <linger_ms>, with the test
session's settings in the environment (``Settings.as_env``). Stops on SIGTERM.
"""
from __future__ import annotations

import signal
import sys
import threading


from shared import store_client
from shared.bus.outbox import Outbox, OutboxRelay
from shared.bus.producer import make_producer
from shared.settings import load_settings


def main(service: str, lease_ms: str, linger_ms: str) -> None:
    settings = load_settings()
    store = store_client.connect(settings.store_url("follows"))
    relay = OutboxRelay(Outbox(service, settings), store, lambda: make_producer(settings),
                        lease_ms=int(lease_ms), linger_ms=int(linger_ms), idle_ms=20)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    relay.run(stop)


if __name__ == "__main__":
    main(*sys.argv[1:4])
