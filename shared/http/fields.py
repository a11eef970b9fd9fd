"""Marshmallow fields for what members write: post and comment text, invitation messages,
introduction notes, skills."""
from __future__ import annotations

import unicodedata

from marshmallow import ValidationError, fields, validate

# Characters that show nothing on their own: controls, formats (zero-width space and joiners,
# bidi marks, BOM), separators and spaces, combining marks with nothing to combine with, and
# the "filler" letters some fonts draw blank (Hangul fillers, the blank Braille cell).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me", "Mc"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Line breaks and tabs belong in text; other control characters (NUL, ESC, ...) never do.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def visible(char: str) -> bool:
    return char not in _BLANK_LETTERS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def check_text(value: str) -> None:
    """Refuse text a reader would see as empty, or that carries control characters."""
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in value):
        raise ValidationError("Must not contain control characters (other than tabs and line breaks).")
    if not any(visible(c) for c in value):
        raise ValidationError("Must contain at least one visible character.")


class Text(fields.String):
    """Words a member writes, at most ``max_length`` characters, with something visible in them.

    ``allow_empty``: the empty string means "no text" (an invitation without a message); any
    other value follows the same rule.
    """

    def __init__(self, *, max_length: int, allow_empty: bool = False, **kwargs):
        self.max_length = max_length
        self.allow_empty = allow_empty
        validators = list(kwargs.pop("validate", None) or [])
        super().__init__(validate=[validate.Length(min=0 if allow_empty else 1, max=max_length), self._check, *validators], **kwargs)

    def _check(self, value: str) -> None:
        if value == "" and self.allow_empty:
            return
        check_text(value)
