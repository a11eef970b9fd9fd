"""`rapport demo` against the running stack: a newcomer sees the product working."""
from __future__ import annotations

import uuid


def test_the_demo_loads_a_network_and_shows_a_member_a_non_empty_feed(stack):
    tag = uuid.uuid4().hex[:6]

    done = stack.rapport("demo", "--members", "60", "--tag", tag, timeout=120)

    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    feed = lines.index(next(line for line in lines if line.startswith("Home feed")))
    shown = [line for line in lines[feed + 1:] if line.startswith("  - ")]
    assert shown, f"the demo printed an empty feed:\n{done.stdout}"
    assert "Notifications (" in done.stdout and "People you may know:" in done.stdout

    featured = stack.member(f"ada.lovelace-{tag}")
    items = featured.get("feed", "/v1/feed").json()["items"]
    assert any(post["author"] != featured.id for post in items), "the featured member's feed holds others' posts"
