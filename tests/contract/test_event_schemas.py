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
    jsonschema.validate(json.loads(encode(event)), schema)


def test_an_event_with_a_wrong_field_fails_its_json_schema():
    event = new_event("follows", "follow.created", {"follower": "ada", "followee": "grace", "reason": "explicit",
                                                    "since": "2026-11-26T10:00:00.000Z", "version": 1})
    body = json.loads(encode(event))
    body["data"]["follower"] = "not a member!"
    schema = json.loads((DOCS / f"{event.type}.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, schema)
