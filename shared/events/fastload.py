"""Loading an event's data as its marshmallow schema does, without marshmallow's machinery for
the data that passes.

Every write builds its event through the schema and every consumer loads each event through
it: marshmallow spends about 0.2 ms on a six-field event, most of it in its generic steps
(hooks, error collection, per-field dispatch), not in the checks. ``FastLoader`` runs the same
checks directly, for the field kinds the catalogue uses: a field's value of exactly the type
the field takes is checked by the field's own validators, a missing field gets its
``load_default``, unknown fields are left out (the catalogue's ``EXCLUDE``).

Anything else goes to ``schema.load`` itself, so the answer is always marshmallow's: a value of
another type (a string for an integer, which a non-strict field would convert), ``None`` where
the field does not allow it, a missing required field, a failed check (for its error messages), a field kind or a schema
option it does not know (a nested schema, ``data_key``, hooks). A schema it cannot take
whole is always loaded by marshmallow.
"""
from __future__ import annotations

from typing import Any, Callable

from marshmallow import EXCLUDE, Schema, ValidationError, fields
from marshmallow.utils import missing

# Field classes taken as they are (not subclasses, which may deserialize otherwise), each with
# the one Python type whose values they return unchanged.
_EXACT = {fields.String: str, fields.Integer: int, fields.Boolean: bool}


class _Fallback(Exception):
    """The value needs marshmallow's own load."""


def _check(field: fields.Field) -> Callable[[Any], Any] | None:
    """A function returning ``value`` as ``field`` loads it, raising ``_Fallback`` where it
    cannot say; None when the field's kind is not one it knows."""
    if field.data_key is not None or field.attribute is not None:
        return None
    validators = list(field.validators)

    def validated(value):
        for validator in validators:
            try:
                if validator(value) is False:
                    raise _Fallback
            except ValidationError:
                raise _Fallback from None
        return value

    kind = _EXACT.get(type(field))
    if kind is not None:
        def check(value):
            if type(value) is not kind:  # noqa: E721 - exact: bool is an int, str subclasses are not str
                raise _Fallback
            return validated(value)
        return check
    if type(field) is fields.List:
        inner = _check(field.inner)
        if inner is None:
            # Items of a kind it does not know (a nested schema): an empty list is taken here
            # (most events carry one, e.g. a public post's ``disconnected``), any other goes to
            # marshmallow.
            def check_empty(value):
                if type(value) is not list or value:  # noqa: E721
                    raise _Fallback
                return validated([])
            return check_empty

        def check_list(value):
            if type(value) is not list:  # noqa: E721
                raise _Fallback
            return validated([inner(item) for item in value])
        return check_list
    return None


class FastLoader:
    """``load(data)`` answers as ``schema.load(data)`` does; see the module's docstring."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.plan: list[tuple[str, fields.Field, Callable]] | None = self._plan(schema)

    @staticmethod
    def _plan(schema: Schema):
        if schema.unknown != EXCLUDE or any(schema._hooks.values()) or schema.only or schema.exclude:
            return None
        plan = []
        for name, field in schema.load_fields.items():
            check = _check(field)
            if check is None:
                return None
            plan.append((name, field, check))
        return plan

    def load(self, data: Any) -> dict:
        if self.plan is None or type(data) is not dict:  # noqa: E721
            return self.schema.load(data)
        out = {}
        try:
            for name, field, check in self.plan:
                if name in data:
                    value = data[name]
                    if value is None:
                        # Taken as it is where the field allows it (marshmallow runs no validator
                        # on it then); else the refusal and its message are marshmallow's.
                        if not field.allow_none:
                            raise _Fallback
                        out[name] = None
                    else:
                        out[name] = check(value)
                elif field.required:
                    raise _Fallback
                elif field.load_default is not missing:
                    default = field.load_default
                    out[name] = default() if callable(default) else default
        except _Fallback:
            return self.schema.load(data)
        return out
