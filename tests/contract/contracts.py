"""What the contract tests compare: consumers' declarations, their worker registries, and what
producers promise (the catalogue, docs/events) or actually emit."""
from __future__ import annotations

import importlib
import json

from shared.events.catalogue import BY_TYPE, EventType
from shared.settings import REPO_ROOT, Settings

DOCS = REPO_ROOT / "docs" / "events"
CONSUMING_SERVICES = ("connections", "follows", "feed", "notifications", "profiles",
                      "messaging")


def declared(service: str) -> dict[str, tuple[str, ...]]:
    """``services/<service>/contract.py``'s CONSUMES."""
    return importlib.import_module(f"services.{service}.contract").CONSUMES


def handled_types(service: str, settings: Settings) -> set[str]:
    """The full event types the service's worker registry has a handler for.

    A handler is registered by short name on a consumer of some topics: its type is the one of
    that name published on one of those topics.
    """
    types = set()
    for consumer in importlib.import_module(f"services.{service}.worker").consumers(settings):
        for name in consumer.handlers:
            matches = [t.type for t in BY_TYPE.values() if t.name == name and t.topic in consumer.topics]
            assert matches, f"{consumer.name} handles {name!r}, which no type on {consumer.topics} is"
            types.update(matches)
    return types


def schema_fields(etype: EventType) -> set[str]:
    """The fields the producer's data schema provides (every one is in the data it dumps)."""
    return {f.data_key or name for name, f in etype.data().fields.items()}


def json_schema(type_: str) -> dict | None:
    path = DOCS / f"{type_}.json"
    return json.loads(path.read_text()) if path.exists() else None


def missing_fields(needed: tuple[str, ...], provided: set[str] | dict) -> list[str]:
    return [f for f in needed if f not in provided]


def consumers_of(type_: str) -> dict[str, tuple[str, ...]]:
    """Every consuming service that relies on ``type_``, with the fields it needs."""
    return {s: declared(s)[type_] for s in CONSUMING_SERVICES if type_ in declared(s)}
