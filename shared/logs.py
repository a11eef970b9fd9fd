"""Structured logs: one JSON object a line, carrying the service, and the request id or event id
bound in context.

Every line of a process carries ``service``, whatever thread writes it (a gunicorn thread, a
kafka-python thread, a live hub's greenlet): it is added by a processor, not bound in one thread's
context. Lines of the standard library's loggers (gunicorn's, kafka-python's, ``warnings``) go
through the same renderer.
"""
from __future__ import annotations

import json
import logging
import sys
import threading

import orjson
import structlog

_configured = False


class _Stderr:
    """Whatever ``sys.stderr`` is at the moment of writing (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class ServiceName:
    """A processor naming the process's service on every line (a line's own ``service`` stays)."""

    def __init__(self, service: str):
        self.service = service

    def __call__(self, logger, method_name: str, event_dict: dict) -> dict:
        event_dict.setdefault("service", self.service)
        return event_dict


def _dumps(event_dict: dict, default=None) -> str:
    """One line of JSON: orjson (an API writes a line per request, and it takes a third less CPU
    than the standard library's), else ``json`` for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(event_dict, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(event_dict, default=default)


def _render():
    return structlog.processors.JSONRenderer(serializer=_dumps)


def _shared_processors(service: str) -> list:
    return [
        structlog.contextvars.merge_contextvars,
        ServiceName(service),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def json_formatter(service: str) -> logging.Formatter:
    """A stdlib formatter writing each record as the JSON object structlog's own lines are."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    _render()],
        foreign_pre_chain=_shared_processors(service),
    )


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route stdlib and structlog output through one JSON renderer (once per process)."""
    global _configured
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[*_shared_processors(service), structlog.processors.format_exc_info, _render()],
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(_Stderr())
    handler.setFormatter(json_formatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # A library's warnings (deprecations, kafka-python's) as log lines of this service, not
    # plain text on stderr.
    logging.captureWarnings(True)
    # A thread that dies of an exception: its traceback as one line, not plain text on stderr.
    threading.excepthook = _log_thread_death
    # kafka-python is chatty at INFO about every connection it opens.
    logging.getLogger("kafka").setLevel(logging.WARNING)


def _log_thread_death(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    structlog.get_logger(__name__).error("thread died", thread=getattr(args.thread, "name", None),
                                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def get_logger(name: str | None = None):
    return structlog.get_logger(name)
