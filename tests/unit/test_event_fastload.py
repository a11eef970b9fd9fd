"""The fast path of event data loading answers exactly as the marshmallow schema does: the same
data, or the same ValidationError, for every event type of the catalogue."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields

import services.feed.fanout  # noqa: F401 - registers fanout.batch, whose members field is the feed's own
from shared.events.catalogue import BY_TYPE
from shared.events.fastload import FastLoader

# Values that pass some field of the catalogue, and values that fail most of them.
VALUES = ["ada", "grace-1", "0123456789abcdef0123456789abcdef", "ada~k3x9", "k3x9", "2026-11-26T10:15:00.123Z",
          "explicit", "connection", "removed", "direct", "group", "public", "connections", "everyone",
          "new_follower", "", 1, True, False, None, ["ada", "grace"], [], "2026-13-40", "x" * 301, "ADA!", 0, -1,
          2 ** 60, 1.5, ["ada", 1], {"a": 1}, "1"]


def valid_data(schema) -> dict:
    """For each field the first of VALUES it takes: data the schema loads."""
    data = {}
    for name, field in schema.fields.items():
        for value in VALUES:
            try:
                field.deserialize(value)
            except ValidationError:
                continue
            data[name] = value
            break
    schema.load(data)  # raises if VALUES lack a value some field needs
    return data


def _answer(load, data):
    try:
        return "ok", load(data)
    except ValidationError as exc:
        return "invalid", exc.messages


@pytest.mark.parametrize("type_", sorted(BY_TYPE))
@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_loader_answers_as_the_schema_does(type_, data):
    schema = BY_TYPE[type_].data()
    event_data = valid_data(schema)
    for name in list(event_data):  # most fields kept, some changed or left out
        change = data.draw(st.sampled_from(["keep"] * 3 + ["replace", "drop"]), label=name)
        if change == "replace":
            event_data[name] = data.draw(st.sampled_from(VALUES), label=f"{name} value")
        elif change == "drop":
            del event_data[name]
    if data.draw(st.booleans(), label="an unknown field"):
        event_data["unknown_field"] = "x"

    assert _answer(FastLoader(schema).load, event_data) == _answer(schema.load, event_data)


@pytest.mark.parametrize("type_", sorted(BY_TYPE))
def test_the_fast_loader_answers_as_the_schema_does_for_data_that_is_not_an_object(type_):
    schema = BY_TYPE[type_].data()
    for data in (None, [], "data", 1):
        assert _answer(FastLoader(schema).load, data) == _answer(schema.load, data)


def _plain(field) -> bool:
    # A list of items of another kind is taken when empty (any other goes to marshmallow).
    return type(field) in (fields.String, fields.Integer, fields.Boolean, fields.List)


def test_the_fast_loader_takes_the_fast_path_for_every_type_whose_fields_are_all_plain_or_lists():
    taken = {t: FastLoader(e.data()).plan is not None for t, e in BY_TYPE.items()}

    assert taken == {t: all(_plain(f) for f in e.data().fields.values()) for t, e in BY_TYPE.items()}
    assert sum(taken.values()) >= 30  # all of the catalogue but fanout.batch (its members field is the feed's own)


def test_a_list_of_nested_items_is_taken_when_empty_and_loaded_by_marshmallow_otherwise():
    schema = BY_TYPE["rapport.feed.post.created.v1"].data()
    loader, base = FastLoader(schema), valid_data(schema)
    for disconnected in ([], [{"member": "ada", "version": 3}], [{"member": "ada"}], [{"member": 1, "version": "x"}]):
        data = {**base, "disconnected": disconnected}
        assert _answer(loader.load, data) == _answer(schema.load, data)


@pytest.mark.parametrize("type_", sorted(BY_TYPE))
def test_the_fast_loader_answers_as_the_schema_does_for_each_field_changed_or_left_out_alone(type_):
    schema = BY_TYPE[type_].data()
    loader, base = FastLoader(schema), valid_data(schema)
    variants = [{k: v for k, v in base.items() if k != name} for name in base]
    variants += [{**base, name: value} for name in base for value in VALUES]
    for event_data in variants:
        assert _answer(loader.load, event_data) == _answer(schema.load, event_data), event_data
