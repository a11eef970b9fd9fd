"""Export the event catalogue to JSON Schema, so a consumer in any language can use it.

The marshmallow classes stay the single source; apispec's converter (the same one that
builds the services' OpenAPI documents) turns each into a JSON Schema object.
"""
from __future__ import annotations

import json
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from shared.events.catalogue import CATALOGUE, EventType
from shared.events.envelope import EnvelopeSchema


def _converter():
    plugin = MarshmallowPlugin()
    APISpec("rapport-events", "1", "3.0.3", plugins=[plugin])
    return plugin.converter


def _to_json_schema(node):
    """OpenAPI 3.0's ``nullable`` becomes JSON Schema's ``"type": [..., "null"]``."""
    if isinstance(node, dict):
        node = {k: _to_json_schema(v) for k, v in node.items()}
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    return node


def event_schema(etype: EventType) -> dict:
    """The JSON Schema of one event type: the envelope with its ``type`` fixed and its ``data``."""
    convert = _converter().schema2jsonschema
    envelope = convert(EnvelopeSchema)
    envelope["properties"]["type"] = {"type": "string", "const": etype.type}
    envelope["properties"]["data"] = convert(etype.data)
    envelope = _to_json_schema(envelope)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://rapport.dev/events/{etype.type}.json",
        "title": etype.type,
        "description": (etype.data.__doc__ or "").strip() or f"{etype.name} on {etype.topic}",
        "x-topic": etype.topic,
        **envelope,
    }


def export(folder: Path) -> list[Path]:
    """Write one ``<type>.json`` per event type into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for etype in CATALOGUE:
        path = folder / f"{etype.type}.json"
        path.write_text(json.dumps(event_schema(etype), indent=2, sort_keys=False) + "\n")
        written.append(path)
    return written
