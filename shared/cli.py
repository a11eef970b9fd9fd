"""The ``rapport`` command: run the local stack, a service's worker, mint tokens, load a demo."""
from __future__ import annotations

import argparse
import sys

from shared.settings import SERVICES, load_settings


def _token(args) -> int:
    from shared.auth import mint_token

    settings = load_settings()
    print(mint_token(args.member, settings.jwt_secret, ttl_seconds=args.ttl or settings.jwt_ttl_seconds))
    return 0


def _worker(args) -> int:
    from shared.bus.worker import run_service_worker

    return run_service_worker(args.service, load_settings())


def _schemas(args) -> int:
    from pathlib import Path

    from shared.events.jsonschema import export

    for path in export(Path(args.out)):
        print(path)
    return 0


def _demo(args) -> int:
    from shared.demo import run

    return run(load_settings(), members=args.members, seed=args.seed, tag=args.tag, host=args.host)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rapport", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("token", help="print a bearer token the local stack accepts for MEMBER")
    p.add_argument("member")
    p.add_argument("--ttl", type=int, default=None, help="seconds until it expires")
    p.set_defaults(func=_token)

    p = sub.add_parser("worker", help="run a service's worker: its outbox relay and consumers")
    p.add_argument("service", choices=SERVICES)
    p.set_defaults(func=_worker)

    p = sub.add_parser("schemas", help="export the event catalogue to JSON Schema files")
    p.add_argument("--out", default="docs/events", help="folder to write into")
    p.set_defaults(func=_schemas)

    p = sub.add_parser("demo", help="load a small network into the running stack over HTTP and show one member's view")
    p.add_argument("--members", type=int, default=300, help="how many members (default 300)")
    p.add_argument("--seed", type=int, default=7, help="the network's shape comes from this seed")
    p.add_argument("--tag", default=None, help="suffix of the member ids (default: new for every run)")
    p.add_argument("--host", default="127.0.0.1", help="where the APIs listen (ports from RAPPORT_<SERVICE>_PORT)")
    p.set_defaults(func=_demo)

    from shared.stack import cli as stack_cli

    stack_cli.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
