"""A closed account's erasure in the connections service (on ``member.closed``, from the member
replica's consumer): its pair records, invitations and introductions either way (and those it
was the go-between of), endorsements given and received, blocks either way, its people-you-may-
know state, and its entries in every other member's projections.

The records are erased directly rather than through the pair transitions: a transition keeps
the pair's record (which names the member) and emits events the other services no longer need,
since each of them erases its own copy of the member on the same ``member.closed``. Each write
is one single-key command, or ``ERASE_ENDORSEMENT`` on the endorsee's slot, queued on the
consumer's per-slot transactions. Counts are cardinalities (connections) or move only on
ZREM's reply (endorsements), so a retried ``member.closed`` drops nothing twice.

Invitations, introductions and endorsements given live in other members' and pairs' slots with
no index by member; they are found by one SCAN of the service's keys of those kinds. Closing
an account is rare, and a full SCAN is the price of keeping no extra index on every write.
"""
from __future__ import annotations

from services.connections import store as keys
from shared.bus.consumer import Effects

_MEMBER_KINDS = ("connections", "invitations-received", "invitations-sent", "invitations-open", "blocks",
                 "blocked-by", "projected", "invitations-log", "settings", "endorsement-skills",
                 "endorsement-skill-names", "suggestions", "suggestions-state")


def _kind(key: str) -> str:
    return key.split(":", 3)[2]


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the connections store holds of ``member``."""
    store, tx = fx.store, fx.tx
    others = set(store.hkeys(keys.projected(member)))
    others |= set(store.zrange(keys.connections(member), 0, -1)) | set(store.zrange(keys.blocks(member), 0, -1))
    others |= set(store.smembers(keys.blocked_by(member)))
    records: list[str] = []  # invitation and introduction keys naming the member
    for key in store.scan_iter(match="connections:*", count=1000):
        kind = _kind(key) if key.count(":") >= 3 else ""
        if kind in ("invitation", "introduction"):
            fields = store.hmget(key, "inviter", "invitee", "requester", "target", "via", "introduced_by")
            if member in fields:
                records.append(key)
                others |= {f for f in fields[:4] if f and f != member}
        elif kind == "relationship" and member in key.rsplit(":", 1)[1].split("|"):
            a, b = key.rsplit(":", 1)[1].split("|")
            others.add(b if a == member else a)
        elif kind == "reinvite-cooldown" and member in key.split(":")[-2:]:
            tx.delete(key)
        elif kind == "suggestions" and store.zscore(key, member) is not None:
            # Lists name 2nd-degree members, and may be older than the network: look in all.
            tx.zrem(key, member)
        elif kind == "endorsers":
            endorsee, _, skill_key = _endorsers_parts(key)
            if endorsee == member:
                tx.delete(key)
            elif store.zscore(key, member) is not None:
                keys.ERASE_ENDORSEMENT(tx, pipe=tx, keys={"endorsers": key, "skills": keys.endorsement_skills(endorsee),
                                                          "names": keys.endorsement_names(endorsee)},
                                       endorser=member, skill_key=skill_key)
    ids = {key.rsplit(":", 1)[1] for key in records}
    for key in records:
        tx.delete(key)
    for other in others - {member}:
        tx.delete(keys.relationship(member, other))  # the pair's slot
        tx.zrem(keys.connections(other), member)
        tx.hdel(keys.open_invitations(other), member)
        tx.hdel(keys.projected(other), member)
        tx.zrem(keys.blocks(other), member)
        tx.srem(keys.blocked_by(other), member)
        tx.zrem(keys.suggestions(other), member)
        if ids:
            tx.zrem(keys.sent(other), *ids)
            tx.zrem(keys.received(other), *ids)
    tx.zrem(keys.suggestions_due(), member)
    for kind in _MEMBER_KINDS:
        tx.delete(f"connections:{keys.member_tag(member)}:{kind}:{member}")


def _endorsers_parts(key: str) -> tuple[str, str, str]:
    """(endorsee, '', skill key) of an endorsers key ``connections:{sN}:endorsers:<endorsee>:<skill>``."""
    rest = key.split(":", 3)[3]
    endorsee, _, skill_key = rest.partition(":")
    return endorsee, "", skill_key
