"""The one Lua convention in the connections and follows services: every script is a LuaScript
declared in the service's store.py, and nothing runs Lua any other way."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from shared.lua import LuaScript

ROOT = Path(__file__).resolve().parents[2]
# Ways to run Lua that bypass the convention (and its one-slot check).
RAW_LUA = re.compile(r"\.eval\(|\.evalsha\(|register_script|script_load|\bScript\(|\bclass Lua\b")


@pytest.mark.parametrize("service", ["connections", "follows"])
def test_no_module_of_the_service_runs_lua_but_through_its_store_scripts(service):
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "services" / service).glob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if RAW_LUA.search(line)]
    assert offenders == []


@pytest.mark.parametrize("service", ["connections", "follows"])
def test_every_script_of_the_store_is_a_lua_script_listed_in_its_scripts(service):
    store = importlib.import_module(f"services.{service}.store")
    declared = {name for name, value in vars(store).items() if isinstance(value, LuaScript)}
    assert declared and {s.name for s in store.SCRIPTS} == {vars(store)[n].name for n in declared}
    assert not [name for name, value in vars(store).items()
                if isinstance(value, str) and re.search(r"redis\.call", value) and not name.startswith("_")]
