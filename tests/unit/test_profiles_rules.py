"""The profiles service's plain rules, without I/O: name folding, index prefixes, matching,
skills folding, the limited view's top skills and current positions."""
from __future__ import annotations

from services.profiles import search
from services.profiles.profiles import _current_positions, _top_skills, skill_key
from services.profiles.schemas import fold_skills


def test_folding_drops_accents_and_case():
    assert search.words("Zoë ÅNGSTRÖM-Núñez") == ["zoe", "angstrom", "nunez"]
    assert search.words("Straße") == ["strasse"]


def test_a_name_is_filed_under_every_prefix_of_each_word_up_to_12_characters():
    assert search.prefixes("Ada Lovelace") == {"a", "ad", "ada", "l", "lo", "lov", "love", "lovel", "lovela",
                                               "lovelac", "lovelace"}
    assert max(map(len, search.prefixes("Supercalifragilistic"))) == search.PREFIX_MAX


def test_every_query_word_must_prefix_some_word_of_the_name():
    name = search.words("Ada Lovelace")
    assert search.matches(["ada", "lov"], name)
    assert search.matches(["lov", "ada"], name)
    assert not search.matches(["ada", "ovelace"], name)
    assert not search.matches(["adam"], name)


def test_an_entry_orders_by_folded_name_then_member():
    assert search.entry("Ada Lovelace", "ada") == "ada lovelace\x00ada"
    assert search.entry("!!!", "ada") is None
    assert search.entry("Ada", "z") < search.entry("Ada Byron", "a")


def test_skills_fold_case_and_spacing_into_the_first_spelling():
    assert fold_skills(["Machine  Learning", "machine learning", "Lua", "LUA "]) == ["Machine Learning", "Lua"]
    assert skill_key(" Machine   LEARNING ") == "machine learning"


def test_top_skills_are_the_three_most_endorsed_ties_in_the_members_order():
    skills = [{"name": n, "endorsements": c} for n, c in (("a", 0), ("b", 2), ("c", 0), ("d", 2), ("e", 1))]
    assert [s["name"] for s in _top_skills(skills)] == ["b", "d", "e"]


def test_current_positions_are_those_without_end_title_and_organization_only():
    doc = {"experience": [{"title": "T1", "organization": "O1", "start": "2020-01", "description": "secret"},
                          {"title": "T2", "organization": "O2", "start": "2010-01", "end": "2019-12"}]}
    assert _current_positions(doc) == [{"title": "T1", "organization": "O1"}]
