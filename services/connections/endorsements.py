"""Endorsements (PRODUCT.md, Two relationships): a member endorses a 1st-degree connection for
a skill. Followers and strangers get 403 ``not_connected`` (so does a blocked member: a block
removes the connection, and the refusal is the plain one).

Once per skill per endorser: a repeat is idempotent (200 with the first endorsement, no second
event), like following. Skills are matched without regard to case or spacing ("machine
learning" = "Machine  Learning"); the first spelling is kept for display.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis

from services.connections import store as keys
from services.connections.network import may_see_connections
from shared.bus.outbox import Outbox
from shared.clock import now_ms, rfc3339
from shared.events import new_event
from shared.http.fields import visible
from shared.pages import zset_page
from shared.problems import Forbidden, Invalid

SKILL_MAX = 80
SHOWN_ENDORSERS = 3


@dataclass(frozen=True)
class Endorsement:
    endorser: str
    endorsee: str
    skill: str
    endorsed_at_ms: int


@dataclass(frozen=True)
class Skill:
    skill: str
    count: int
    endorsers: list[str]  # the most recent few
    endorsed_by_me: bool


def normalise(skill: str) -> tuple[str, str]:
    """``(display, key)``: the skill with its spacing tidied, and its case-folded matching key."""
    display = " ".join(skill.split())
    if not display or len(display) > SKILL_MAX or not display.isprintable() or not any(map(visible, display)):
        raise Invalid({"skill": [f"A skill is 1-{SKILL_MAX} printable characters."]}, code="invalid_skill")
    return display, display.casefold()


def endorse(store: redis.Redis, outbox: Outbox, endorser: str, endorsee: str, skill: str) -> tuple[Endorsement, bool]:
    """``endorser`` endorses ``endorsee`` for ``skill``. Returns the endorsement and whether it is new."""
    if endorser == endorsee:
        raise Invalid({"member": ["A member cannot endorse themselves."]}, code="cannot_endorse_self")
    display, key = normalise(skill)
    now = now_ms()
    event = new_event("connections", "endorsement.added", {"endorser": endorser, "endorsee": endorsee,
                                                           "skill": display, "at": rfc3339(now)})
    # The footprint (the endorser's slot) before the endorsement, so closing the endorser finds it.
    store.sadd(keys.endorsed(endorser), f"{endorsee} {key}")
    # All in the endorsee's slot: their projected connections say whether the endorser is one.
    reply = keys.ENDORSE(store, keys={
        "connections": keys.connections(endorsee), "endorsers": keys.endorsers(endorsee, key),
        "skills": keys.endorsement_skills(endorsee), "names": keys.endorsement_names(endorsee),
        "outbox": outbox.key_for(keys.member_tag(endorsee)),
    }, endorser=endorser, skill_key=key, skill=display, now=now, event=outbox.xadd_args(event))
    if reply[0] == "not_connected":
        raise Forbidden(f"Only {endorsee}'s connections can endorse them.", code="not_connected")
    return Endorsement(endorser, endorsee, reply[2], int(float(reply[1]))), reply[0] == "added"


def skills_page(store: redis.Redis, viewer: str, endorsee: str, limit: int,
                cursor: str | None) -> tuple[list[Skill], str | None]:
    """``endorsee``'s endorsed skills, most endorsed first, each with its latest endorsers.

    Endorsers are the endorsee's connections: they are named only to a viewer whom the
    endorsee's connections_visibility lets see those (the counts are public).
    """
    items, next_cursor = zset_page(store, keys.endorsement_skills(endorsee), limit, cursor)
    named = may_see_connections(store, viewer, endorsee)
    with store.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.endorsement_names(endorsee), [key for key, _ in items] or ["-"])
        for key, _ in items:
            if named:
                pipe.zrevrange(keys.endorsers(endorsee, key), 0, SHOWN_ENDORSERS - 1)
            pipe.zscore(keys.endorsers(endorsee, key), viewer)
        replies = pipe.execute()
    names, rest = replies[0], replies[1:]
    per_skill = 2 if named else 1
    skills = []
    for i, (key, count) in enumerate(items):
        reply = rest[per_skill * i:per_skill * (i + 1)]
        endorsers = reply[0] if named else []
        skills.append(Skill(names[i] or key, int(count), endorsers, reply[-1] is not None))
    return skills, next_cursor
