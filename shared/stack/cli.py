"""The stack's subcommands of ``rapport``: up, down, status, topics and kafka."""
from __future__ import annotations

import argparse
import subprocess
import sys

from shared.settings import load_settings


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``up``, ``down``, ``status``, ``topics`` and ``kafka`` to the ``rapport`` parser."""
    p = sub.add_parser("up", help="start the local stack: Kafka, Redis, then every API and worker")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--infra-only", action="store_true", help="start Kafka and Redis only")
    only.add_argument("--apps-only", action="store_true",
                      help="start the APIs and workers only, on the Kafka and Redis already running")
    p.add_argument("--cluster", action="store_true",
                   help="the cluster stack: Kafka on three nodes and a six-node Redis Cluster, beside the default stack")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes per service (default 1)")
    p.set_defaults(func=_up)

    p = sub.add_parser("down", help="stop the local stack (and the cluster stack, if it runs)")
    p.add_argument("--keep-infra", action="store_true", help="stop the APIs and workers, keep Kafka and Redis")
    p.add_argument("--cluster", action="store_true", help="stop the cluster stack only")
    p.set_defaults(func=_down)

    p = sub.add_parser("status", help="one line per process of the local stack (and the cluster stack's)")
    p.add_argument("--cluster", action="store_true", help="the cluster stack only")
    p.set_defaults(func=_status)

    p = sub.add_parser("topics", help="create the missing Kafka topics (RAPPORT_KAFKA_BOOTSTRAP)")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                   help="how long to wait for Kafka to answer first (default 120)")
    p.set_defaults(func=_topics)

    from shared.stack.kafka import TOOLS

    p = sub.add_parser("kafka", help="run one of Kafka's own tools on the stack's broker (fetched on first use)",
                       description="Run Kafka's TOOL (what bin/kafka-TOOL.sh runs) with ARGS, on "
                                   "RAPPORT_KAFKA_BOOTSTRAP unless ARGS give --bootstrap-server. "
                                   "e.g. rapport kafka consumer-groups --describe --group feed.posts")
    p.add_argument("tool", choices=list(TOOLS), help="the tool: " + ", ".join(TOOLS))
    p.add_argument("args", nargs=argparse.REMAINDER, help="the tool's own arguments (--help lists them)")
    p.set_defaults(func=_kafka)


def _failing(run):
    # Known failures read as one line, not a traceback; anything else is a bug and shows one.
    def command(args) -> int:
        try:
            return run(args)
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
            print(f"rapport {args.command}: {exc}", file=sys.stderr)
            return 1
    return command


@_failing
def _up(args) -> int:
    from shared.stack import runner

    return runner.up(load_settings(), infra_only=args.infra_only, apps_only=args.apps_only,
                     cluster=args.cluster, workers=args.workers)


@_failing
def _down(args) -> int:
    from shared.stack import runner

    return runner.down(load_settings(), keep_infra=args.keep_infra, cluster=True if args.cluster else None)


def _status(args) -> int:
    from shared.stack import runner

    return runner.status(load_settings(), cluster=True if args.cluster else None)


@_failing
def _topics(args) -> int:
    from shared.bus.topics import all_topics, ensure_topics
    from shared.stack import kafka

    settings = load_settings()
    kafka.wait_ready(settings, timeout=args.wait)
    created = ensure_topics(settings)
    for topic in all_topics(settings):
        print(f"{topic}: {'created' if topic in created else 'present'}")
    return 0


@_failing
def _kafka(args) -> int:
    import contextlib

    from shared.stack import kafka

    settings = load_settings()
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the tool's alone
        kafka.ensure_tools(settings)
    try:
        return subprocess.run(kafka.tool_argv(settings, args.tool, args.args), check=False).returncode
    except FileNotFoundError as exc:
        raise RuntimeError(f"{exc.filename} not found: install Java 17 or newer "
                           "(apt-get install openjdk-17-jre-headless) or set JAVA_HOME") from exc
    except KeyboardInterrupt:  # a console consumer is stopped so
        return 130
