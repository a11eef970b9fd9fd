"""Each consuming service declares the event types and fields it relies on; the declaration
stays in step with its worker's registry, and every producer's schema provides what it names."""
from __future__ import annotations

import pytest

from shared.events.catalogue import BY_TYPE, EventData, EventType
from shared.settings import load_settings
from tests.contract.contracts import (CONSUMING_SERVICES, consumers_of, declared, handled_types, json_schema,
                                      missing_fields, schema_fields)

import services.feed.fanout  # noqa: F401  - registers the feed's internal fanout.batch type

DECLARED = sorted({(service, type_) for service in CONSUMING_SERVICES for type_ in declared(service)})


@pytest.mark.parametrize("service", CONSUMING_SERVICES)
def test_a_consumer_declares_exactly_the_types_its_worker_handles(service):
    assert set(declared(service)) == handled_types(service, load_settings())


@pytest.mark.parametrize("service,type_", DECLARED, ids=lambda v: v)
def test_every_field_a_consumer_relies_on_is_in_the_producers_schema(service, type_):
    assert type_ in BY_TYPE, f"{service} consumes {type_}, which no producer publishes any more"
    assert missing_fields(declared(service)[type_], schema_fields(BY_TYPE[type_])) == []


@pytest.mark.parametrize("service,type_", DECLARED, ids=lambda v: v)
def test_every_field_a_consumer_relies_on_is_in_the_published_json_schema(service, type_):
    published = json_schema(type_)
    if published is None:  # a service-internal type (feed.fanout): not published to other teams
        assert not BY_TYPE[type_].topic.endswith(".events"), f"{type_} has no schema in docs/events"
        return
    assert missing_fields(declared(service)[type_], published["properties"]["data"]["properties"]) == []


def test_a_consumer_never_declares_a_field_twice():
    for service in CONSUMING_SERVICES:
        for type_, needed in declared(service).items():
            assert len(set(needed)) == len(needed), f"{service}: {type_}"


def test_removing_a_field_a_consumer_needs_from_a_producers_schema_breaks_the_contract():
    """The check has teeth: follow.created without ``reason`` would silence every new-follower rule."""
    original = BY_TYPE["rapport.follows.follow.created.v1"]
    without_reason = EventData.from_dict({name: f for name, f in original.data().fields.items()
                                          if name != "reason"}, name="FollowCreatedWithoutReason")
    broken = EventType(original.service, original.name, original.version, without_reason, original.key,
                       original.subject)
    needed = consumers_of(original.type)
    assert "notifications" in needed
    assert missing_fields(needed["notifications"], schema_fields(broken)) == ["reason"]
    assert missing_fields(needed["notifications"], schema_fields(original)) == []


def test_renaming_a_field_in_the_published_schema_breaks_the_contract():
    published = json_schema("rapport.feed.post.created.v1")
    data = published["properties"]["data"]["properties"]
    data["writer"] = data.pop("author")
    assert missing_fields(declared("feed")["rapport.feed.post.created.v1"], data) == ["author"]
