"""What an API's request log line costs, measured against what it replaced in the same run:

1. one ``GET /healthz`` through a service's Flask app (no network, no store) with its request
   line written (``RAPPORT_LOG_LEVEL`` INFO, the default) and filtered out (WARNING, as the
   other benchmarks run the APIs);
2. the line alone, rendered by the standard library's ``json`` and by ``shared.logs`` (orjson).

CPU is the process's own (user + system), per request or line; the lines go to /dev/null.

    python -m bench.request_log [--requests 5000]
"""
from __future__ import annotations

import argparse
import logging
import os
import resource
import sys

import structlog

from bench.support import write_results


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_call_us(fn, count: int) -> float:
    started = cpu()
    for _ in range(count):
        fn()
    return (cpu() - started) / count * 1e6


def configure(render, level: int) -> None:
    from shared import logs

    structlog.reset_defaults()
    structlog.configure(processors=[*logs._shared_processors("follows"), structlog.processors.format_exc_info,
                                    render],
                        logger_factory=structlog.PrintLoggerFactory(logs._Stderr()),
                        wrapper_class=structlog.make_filtering_bound_logger(level), cache_logger_on_first_use=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    sys.stderr = open(os.devnull, "w")  # the lines written, not the terminal's cost
    from services.follows.app import create_app
    from shared import logs
    from shared.settings import load_settings

    # /healthz touches no store: the settings only need to pass the secrets check.
    client = create_app(settings=load_settings().replace(env="local")).test_client()
    line = structlog.get_logger("bench")
    rounds: dict[str, list[float]] = {k: [] for k in ("request_logged", "request_filtered", "line_json", "line_orjson")}
    for _ in range(7):  # interleaved, the best of seven: the machine's noise hits each alike
        configure(logs._render(), logging.INFO)
        rounds["request_logged"].append(per_call_us(lambda: client.get("/healthz"), args.requests))
        configure(logs._render(), logging.WARNING)
        rounds["request_filtered"].append(per_call_us(lambda: client.get("/healthz"), args.requests))
        for name, render in (("line_json", structlog.processors.JSONRenderer()), ("line_orjson", logs._render())):
            configure(render, logging.INFO)
            rounds[name].append(per_call_us(lambda: line.info(
                "request", request_id="4f0c1e2d9a7b4c55", member="ada", method="GET", route="/healthz", status=200,
                duration_ms=0.512), args.requests * 4))
    best = {name: round(min(values), 1) for name, values in rounds.items()}
    figures = {
        "cpu_us_per_request": {"with_request_line": best["request_logged"], "line_filtered": best["request_filtered"]},
        "request_line_share": round(1 - best["request_filtered"] / best["request_logged"], 3),
        "cpu_us_per_line": {"stdlib_json": best["line_json"], "orjson": best["line_orjson"]},
        "orjson_over_stdlib_json": round(best["line_orjson"] / best["line_json"], 2),
        "requests_per_round": args.requests,
    }
    sys.stderr = sys.__stderr__
    write_results("request_log", figures)


if __name__ == "__main__":
    main()
