"""Cursors are opaque, and a bad one is a clear 422."""
import pytest

from shared.pages import decode_cursor, encode_cursor
from shared.problems import Invalid


def test_a_cursor_round_trips():
    assert decode_cursor(encode_cursor(1764151200123, "ada")) == (1764151200123.0, "ada")


@pytest.mark.parametrize("cursor", ["", "!!!", "bm90IGpzb24", encode_cursor(1, "x")[:-3]])
def test_a_cursor_this_service_did_not_issue_is_422(cursor):
    with pytest.raises(Invalid) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "invalid_cursor"


def _forged(value) -> str:
    import base64
    import json
    raw = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _forged([float("nan"), "x"]), _forged([float("inf"), "x"]), "WzFlNDAwLCJ4Il0",  # [1e400,"x"]
    _forged("[" + "9" * 5000 + ', "x"]'), _forged(["1", "x"]), _forged([True, "x"]), _forged([1, ["x"]]),
    _forged('[1, "\\ud800"]'), _forged({"a": 1}), _forged([1, "x" * 600]),
])
def test_a_forged_cursor_is_422_before_any_store_sees_it(cursor):
    with pytest.raises(Invalid) as caught:
        decode_cursor(cursor)
    assert caught.value.code == "invalid_cursor"
