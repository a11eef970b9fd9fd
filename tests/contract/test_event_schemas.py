"""The JSON Schemas in docs/events are the catalogue's, and what producers build conforms."""
from __future__ import annotations

import json

import jsonschema
import pytest

from shared.events import encode, new_event
from shared.events.catalogue import CATALOGUE
from shared.events.jsonschema import event_schema
from shared.settings import REPO_ROOT

DOCS = REPO_ROOT / "docs" / "events"


@pytest.mark.parametrize("etype", CATALOGUE, ids=lambda t: t.type)
def test_the_published_json_schema_matches_the_catalogue(etype):
    published = json.loads((DOCS / f"{etype.type}.json").read_text())
    assert published == json.loads(json.dumps(event_schema(etype))), "run `rapport schemas` to refresh docs/events"


def test_every_published_schema_names_a_type_in_the_catalogue():
    known = {f"{t.type}.json" for t in CATALOGUE}
    assert {p.name for p in DOCS.glob("*.json")} <= known


def test_an_event_built_by_a_producer_validates_against_its_json_schema():
    event = new_event("feed", "post.created", {"post_id": "ada~p1", "author": "ada", "visibility": "public",
                                               "created_at": "2026-11-26T10:00:00.000Z", "excerpt": "Hello"})
    schema = json.loads((DOCS / f"{event.type}.json").read_text())
    jsonschema.validate(json.loads(encode(event)), schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("etype", CATALOGUE, ids=lambda t: t.type)
def test_the_envelope_time_and_every_time_in_the_data_are_typed_date_time(etype):
    schema = json.loads((DOCS / f"{etype.type}.json").read_text())
    times = [name for name, field in etype.data().fields.items()
             if any(getattr(v, "__name__", "") == "check_rfc3339" for v in field.validators)]
    assert schema["properties"]["time"]["format"] == "date-time"
    assert {name: schema["properties"]["data"]["properties"][name].get("format") for name in times} == \
        {name: "date-time" for name in times}


@pytest.mark.parametrize("time", ["2026-11-26 10:00:00Z", "2026-11-26T10:00:00", "2026-11-26", "2026-02-30T10:00:00Z"])
def test_a_time_that_is_not_rfc_3339_fails_the_schemas_format_check(time):
    event = new_event("follows", "follow.created", {"follower": "ada", "followee": "grace", "reason": "explicit",
                                                    "since": "2026-11-26T10:00:00.000Z", "version": 1})
    schema = json.loads((DOCS / f"{event.type}.json").read_text())
    for where in ("envelope", "data"):
        body = json.loads(encode(event))
        if where == "envelope":
            body["time"] = time
        else:
            body["data"]["since"] = time
        with pytest.raises(jsonschema.ValidationError, match="date-time"):
            jsonschema.validate(body, schema, format_checker=jsonschema.FormatChecker())


def test_an_event_with_a_wrong_field_fails_its_json_schema():
    event = new_event("follows", "follow.created", {"follower": "ada", "followee": "grace", "reason": "explicit",
                                                    "since": "2026-11-26T10:00:00.000Z", "version": 1})
    body = json.loads(encode(event))
    body["data"]["follower"] = "not a member!"
    schema = json.loads((DOCS / f"{event.type}.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema)
