"""What members write must hold something a reader can see (shared/http/fields.py)."""
from __future__ import annotations

import pytest
from marshmallow import Schema, ValidationError

from shared.http.fields import Text


class Note(Schema):
    text = Text(max_length=20, required=True)
    aside = Text(max_length=20, allow_empty=True, load_default=None, allow_none=True)


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "\u200b\u200c\u200d\u2060\ufeff", "\x00", "\x01\x02",
                                  "\n\t\r", "\u202e\u2066", "\u3164", "\u2800", "\u0301\u0301", "\u00a0\u2003"])
def test_text_with_nothing_visible_is_refused(text):
    with pytest.raises(ValidationError) as caught:
        Note().load({"text": text})
    assert "text" in caught.value.messages


@pytest.mark.parametrize("text", ["hello\x00", "bell\x07", "esc\x1b[31m"])
def test_text_with_control_characters_is_refused(text):
    with pytest.raises(ValidationError):
        Note().load({"text": text})


@pytest.mark.parametrize("text", ["hi", "Grüße\nzusammen", "\tindented", "日本語", "👍", "e\u0301", "a\u200bb"])
def test_text_with_something_visible_is_kept_as_written(text):
    assert Note().load({"text": text})["text"] == text


def test_text_over_its_length_is_refused():
    with pytest.raises(ValidationError):
        Note().load({"text": "x" * 21})


def test_optional_text_may_be_empty_or_absent_but_not_invisible():
    assert Note().load({"text": "x"})["aside"] is None
    assert Note().load({"text": "x", "aside": ""})["aside"] == ""
    with pytest.raises(ValidationError) as caught:
        Note().load({"text": "x", "aside": "\u200b"})
    assert "aside" in caught.value.messages
