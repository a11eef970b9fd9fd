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
