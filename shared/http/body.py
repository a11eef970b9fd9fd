"""What a request body must be before any view or schema reads it: at most
``max_body_bytes``, and JSON that every part of the service can hold.

Python's ``json`` accepts more than a store or a schema can: nesting deep enough to exhaust
the recursion limit, lone UTF-16 surrogates (``"\\ud800"``, which no UTF-8 store can encode),
integers of a hundred thousand digits, ``NaN`` and ``Infinity``. Each of those ended in a
500; here they are a 400 ``malformed_body`` before the view runs.
"""
from __future__ import annotations

import json

from flask import Request

from shared.problems import Problem

MAX_DEPTH = 32  # no request schema nests more than three levels
MAX_INT_DIGITS = 30  # counts and ids: nothing a client sends needs more


class PayloadTooLarge(Problem):
    status, code, title = 413, "body_too_large", "Request body too large"


class MalformedBody(Problem):
    status, code, title = 400, "malformed_body", "Malformed request body"


def check_size(request: Request, max_bytes: int) -> None:
    """Refuse a body announced as larger than ``max_bytes`` before reading any of it.

    A chunked body has no length up front: Flask's ``MAX_CONTENT_LENGTH`` (set to the same
    limit) stops reading it at the limit, but Werkzeug then hands over the first
    ``max_bytes`` silently, so a chunked body that reaches the limit is refused here.
    """
    if request.content_length is not None:
        if request.content_length > max_bytes:
            raise PayloadTooLarge(f"The body is {request.content_length} bytes; at most {max_bytes} are accepted.",
                                  max_bytes=max_bytes)
    elif "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        if len(request.get_data(cache=True)) >= max_bytes:
            raise PayloadTooLarge(f"A chunked body reached {max_bytes} bytes; it must stay below.",
                                  max_bytes=max_bytes)


def check_json(request: Request) -> None:
    """Refuse a JSON body the services could not hold (see the module's docstring)."""
    if not request.is_json:
        return
    raw = request.get_data(cache=True)  # cached: the schema reads the same bytes afterwards
    if not raw:
        return
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise MalformedBody(f"JSON nested deeper than {MAX_DEPTH} levels.") from None
    except UnicodeDecodeError:
        raise MalformedBody("The body is not UTF-8.") from None
    except ValueError as exc:  # JSONDecodeError, and ours below
        raise MalformedBody(f"Invalid JSON body: {exc}") from None
    _check_values(data)


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _check_values(data) -> None:
    """Walk the document without recursion: nesting depth, and strings that are not UTF-8 text."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_string(value)
        elif isinstance(value, float) and value in (float("inf"), float("-inf")):
            raise MalformedBody("A number too large for a double (e.g. 1e999).")
        elif isinstance(value, (list, dict)):
            if depth > MAX_DEPTH:
                raise MalformedBody(f"JSON nested deeper than {MAX_DEPTH} levels.")
            if isinstance(value, dict):
                for key in value:
                    _check_string(key)
                pending.extend((v, depth + 1) for v in value.values())
            else:
                pending.extend((v, depth + 1) for v in value)


def _check_string(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedBody("A string holds a lone UTF-16 surrogate (such as \\ud800): not text.") from None
