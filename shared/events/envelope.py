"""The CloudEvents 1.0 envelope (JSON): build, encode and decode events."""
from __future__ import annotations

import contextlib
import contextvars
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.clock import is_rfc3339
from shared.events.catalogue import BY_TYPE, EventType, check_rfc3339, lookup
from shared.events.fastload import FastLoader


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # CloudEvents extension attributes are allowed

    specversion = fields.String(required=True, validate=validate.Equal("1.0"))
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    source = fields.String(required=True, validate=validate.Length(min=1, max=200))
    type = fields.String(required=True, validate=validate.Length(min=1, max=200))
    time = fields.String(required=True, validate=[validate.Length(max=40), check_rfc3339],
                         metadata={"format": "date-time"})
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    datacontenttype = fields.String(load_default="application/json", validate=validate.Length(max=100))
    data = fields.Dict(required=True)


_ENVELOPE = EnvelopeSchema()  # the envelope's rules, as documented (shared/events/jsonschema.py)
_MISSING = object()


def load_envelope(payload: dict) -> dict:
    """``EnvelopeSchema().load(payload)``, written out: the same rules and messages at a tenth of
    the cost (the schema's load was half of what decoding an event cost a consumer).
    Raises ``ValidationError``; tests hold the two to the same verdicts."""
    errors: dict[str, list[str]] = {}
    for name, limit in (("id", 200), ("source", 200), ("type", 200)):
        value = payload.get(name, _MISSING)
        if value is _MISSING or value is None:
            errors[name] = ["Missing data for required field." if value is _MISSING else "Field may not be null."]
        elif not isinstance(value, str):
            errors[name] = ["Not a valid string."]
        elif not 1 <= len(value) <= limit:
            errors[name] = [f"Length must be between 1 and {limit}."]
    specversion = payload.get("specversion", _MISSING)
    if specversion is _MISSING:
        errors["specversion"] = ["Missing data for required field."]
    elif specversion != "1.0":
        errors["specversion"] = ["Must be equal to 1.0." if isinstance(specversion, str) else "Not a valid string."]
    time_ = payload.get("time", _MISSING)
    if time_ is _MISSING or time_ is None:
        errors["time"] = ["Missing data for required field." if time_ is _MISSING else "Field may not be null."]
    elif not isinstance(time_, str):
        errors["time"] = ["Not a valid string."]
    elif len(time_) > 40:
        errors["time"] = ["Longer than maximum length 40."]
    elif not is_rfc3339(time_):
        errors["time"] = ["Not an RFC 3339 time."]
    subject = payload.get("subject")
    if subject is not None and not isinstance(subject, str):
        errors["subject"] = ["Not a valid string."]
    elif subject is not None and len(subject) > 200:
        errors["subject"] = ["Longer than maximum length 200."]
    content_type = payload.get("datacontenttype", "application/json")
    if content_type is None:
        errors["datacontenttype"] = ["Field may not be null."]
    elif not isinstance(content_type, str):
        errors["datacontenttype"] = ["Not a valid string."]
    elif len(content_type) > 100:
        errors["datacontenttype"] = ["Longer than maximum length 100."]
    data = payload.get("data", _MISSING)
    if data is _MISSING or data is None:
        errors["data"] = ["Missing data for required field." if data is _MISSING else "Field may not be null."]
    elif not isinstance(data, dict):
        errors["data"] = ["Not a valid mapping type."]
    if errors:
        raise ValidationError(errors)
    return {"specversion": specversion, "id": payload["id"], "source": payload["source"], "type": payload["type"],
            "time": time_, "subject": subject, "datacontenttype": content_type, "data": data}

_DATA_SCHEMAS: dict[str, FastLoader] = {}  # event type → its data schema's loader, made on first use


@dataclass(frozen=True)
class Event:
    id: str
    source: str
    type: str
    time: str
    subject: str | None
    data: dict[str, Any]
    specversion: str = "1.0"
    key: str = field(default="", compare=False)  # Kafka key, not part of the envelope

    @property
    def dedup_key(self) -> str:
        return f"{self.source}|{self.id}"

    @property
    def name(self) -> str:
        """The short type name, e.g. ``follow.created``."""
        return event_type(self).name

    def envelope(self) -> dict[str, Any]:
        return {"specversion": self.specversion, "id": self.id, "source": self.source, "type": self.type,
                "time": self.time, "subject": self.subject, "datacontenttype": "application/json",
                "data": self.data}


class PoisonEvent(Exception):
    """A message that can never be handled: undecodable, or failing its schema."""


class UnknownEventType(Exception):
    """A well-formed event of a type this consumer's registry does not know (skipped, not poison)."""


def event_type(event: Event) -> EventType:
    try:
        return BY_TYPE[event.type]
    except KeyError:
        raise UnknownEventType(event.type) from None


# A versioned event is built before its store numbers the change: it carries this placeholder
# until the store's script writes the version in (``STAMP_VERSION``), in the same script as the
# change. A placeholder that escaped would fail every consumer's schema (versions start at 1).
PENDING_VERSION = 0

# Lua, prepended to a store's scripts: ``stamped(first, last, version)`` is ARGV[first..last]
# (one outbox entry's field/value list) with the placeholder replaced by ``version``. The
# pattern can only match the key: inside a JSON string a quote is escaped.
STAMP_VERSION = """
local function stamped(first, last, version)
  local out = {}
  for i = first, last do out[#out + 1] = ARGV[i] end
  for i = 1, #out - 1, 2 do
    if out[i] == 'value' then
      out[i + 1] = (string.gsub(out[i + 1], '"version":0([,}])', '"version":' .. version .. '%1', 1))
    end
  end
  return out
end
"""


# While a consumer handles an event, the events its handler builds take ids derived from the
# handled event (and the consumer's group) and their order: a retry of the handler (after an error inside
# its transaction, whose outbox entries Redis does not roll back) builds the same ids again,
# and their consumers drop the copies as duplicates.
_CAUSE: contextvars.ContextVar[tuple[str, itertools.count] | None] = contextvars.ContextVar("cause", default=None)


@contextlib.contextmanager
def caused_by(cause: str):
    """Within this block, ``new_event`` derives the new events' ids from ``cause`` (a consumer's
    dedup marker of the event it handles: one per consumer group and event)."""
    token = _CAUSE.set((cause, itertools.count()))
    try:
        yield
    finally:
        _CAUSE.reset(token)


def _new_id() -> str:
    cause = _CAUSE.get()
    if cause is None:
        return str(uuid.uuid4())
    key, counter = cause
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rapport:{key}#{next(counter)}"))


def _data_schema(etype: EventType) -> Schema:
    """The data schema of ``etype``, made once: building a marshmallow schema costs more than
    loading with it (about 0.2 ms a time, on every write and every event)."""
    return _data_loader(etype).schema


def _data_loader(etype: EventType) -> FastLoader:
    """``etype``'s data schema with its fast path (``shared.events.fastload``), made once."""
    loader = _DATA_SCHEMAS.get(etype.type)
    if loader is None:
        loader = _DATA_SCHEMAS[etype.type] = FastLoader(etype.data())
    return loader


def new_event(service: str, name: str, data: dict[str, Any]) -> Event:
    """Build an event of ``service``'s type ``name``; ``data`` is validated against its schema.

    ``data["version"] = PENDING_VERSION`` builds a versioned event whose version the store's
    script assigns (see ``STAMP_VERSION``)."""
    etype = lookup(service, name)
    loader = _data_loader(etype)
    schema = loader.schema
    pending = data.get("version") == PENDING_VERSION and "version" in schema.fields
    try:
        loaded = loader.load({**data, "version": 1} if pending else data)
    except ValidationError as exc:
        raise ValueError(f"{etype.type}: invalid data {exc.messages}") from None
    # What a schema of plain fields loads is what it dumps (strings, integers, booleans, lists).
    body = dict(loaded) if loader.plan is not None else schema.dump(loaded)
    if pending:
        body["version"] = PENDING_VERSION
    return Event(id=_new_id(), source=f"rapport/{service}", type=etype.type, time=now_rfc3339(),
                 subject=etype.subject(body), data=body, key=etype.key(body))


def encode(event: Event) -> bytes:
    """The envelope as compact UTF-8 JSON (orjson: a twentieth of ``json.dumps``'s time)."""
    return orjson.dumps(event.envelope())


def decode(raw: bytes | None, key: bytes | None = None) -> Event:
    """Load and validate an event. Raises PoisonEvent or UnknownEventType."""
    if raw is None:
        raise PoisonEvent("empty message")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # not JSON, or not UTF-8
        raise PoisonEvent(f"undecodable: {exc}") from None
    if not isinstance(payload, dict):
        raise PoisonEvent("undecodable: not a JSON object")
    try:
        env = load_envelope(payload)
    except ValidationError as exc:
        raise PoisonEvent(f"invalid envelope: {exc.messages}") from None
    etype = BY_TYPE.get(env["type"])
    if etype is None:
        raise UnknownEventType(env["type"])
    try:
        data = _data_loader(etype).load(env["data"])
    except ValidationError as exc:
        raise PoisonEvent(f"invalid {env['type']} data: {exc.messages}") from None
    return Event(id=env["id"], source=env["source"], type=env["type"], time=env["time"],
                 subject=env.get("subject"), data=data, specversion=env["specversion"],
                 key=key.decode(errors="replace") if key else "")
