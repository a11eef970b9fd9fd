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

No SCAN: what names the member in other slots is found from its own keys, so erasure costs in
proportion to what the member touched, not to the store:

- the members it has a pair record with: ``projected`` (every pair whose version moved is
  projected on both sides, by the request at once and by the worker from each event), its
  connections and blocks. Each pair's ``relationship`` and both ``reinvite_cooldown`` keys
  are named from the two ids; its invitations are the pair's ``pair_records`` (added by SEND
  with the invitation, in the pair's slot: no extra command);
- ``introductions``: added on the requester's, target's and go-between's slots before
  INTRODUCE writes the introduction (an introduction moves no pair version, so is not projected);
- ``endorsed`` (``<endorsee> <skill key>``): added before ENDORSE; the endorsements received
  are the member's own ``endorsement_skills``;
- people-you-may-know lists naming the member are those of its 2nd-degree network (a list
  holds 2nd-degree members): its connections' connections. A list computed from a connection
  that has since ended is not found; it expires ``suggestions.KEEP_MS`` after it was computed.

A footprint entry is written before (or with) its record, so erasure never misses a record; an
entry whose record never came (a refused introduction) is skipped.
"""
from __future__ import annotations

from services.connections import store as keys
from shared.bus.consumer import Effects

_MEMBER_KINDS = ("connections", "invitations-received", "invitations-sent", "invitations-open", "blocks",
                 "blocked-by", "projected", "invitations-log", "settings", "endorsement-skills",
                 "endorsement-skill-names", "suggestions", "suggestions-state", "introductions", "endorsed")


def erase(member: str, fx: Effects) -> None:
    """Queue the erasure of everything the connections store holds of ``member``."""
    store, tx = fx.store, fx.tx
    connections = store.zrange(keys.connections(member), 0, -1)
    others = set(store.hkeys(keys.projected(member))) | set(connections)
    others |= set(store.zrange(keys.blocks(member), 0, -1)) | set(store.smembers(keys.blocked_by(member)))
    others.discard(member)

    invitation_ids: set[str] = set()
    for other in others:
        ids = store.smembers(keys.pair_records(member, other))
        invitation_ids |= ids
        for invitation_id in ids:
            tx.delete(keys.invitation(invitation_id))
        tx.delete(keys.pair_records(member, other), keys.relationship(member, other))  # the pair's slot
        tx.delete(keys.reinvite_cooldown(member, other))
        tx.delete(keys.reinvite_cooldown(other, member))

    for introduction_id in store.smembers(keys.introductions(member)):
        requester, target, via, invitation_id = store.hmget(
            keys.introduction(introduction_id), "requester", "target", "via", "invitation_id")
        if requester is None:
            continue  # refused: never written
        for named in (requester, target, via):
            if named != member:
                tx.srem(keys.introductions(named), introduction_id)
        if member == via and invitation_id:
            # The other two's invitation stays theirs, without the go-between's name.
            tx.hset(keys.invitation(invitation_id), "introduced_by", "")
        if member in (requester, target):
            others |= {requester, target} - {member}
        if store.hget(keys.relationship(requester, target), f"intro:{requester}") == introduction_id:
            tx.hdel(keys.relationship(requester, target), f"intro:{requester}")
        tx.delete(keys.introduction(introduction_id))

    for other in others - {member}:
        tx.zrem(keys.connections(other), member)
        tx.hdel(keys.open_invitations(other), member)
        tx.hdel(keys.projected(other), member)
        tx.zrem(keys.blocks(other), member)
        tx.srem(keys.blocked_by(other), member)
        tx.zrem(keys.suggestions(other), member)
        if invitation_ids:
            tx.zrem(keys.sent(other), *invitation_ids)
            tx.zrem(keys.received(other), *invitation_ids)

    # Endorsements given: the endorsee's count of each skill drops once (ERASE_ENDORSEMENT).
    for entry in store.smembers(keys.endorsed(member)):
        endorsee, _, skill_key = entry.partition(" ")
        keys.ERASE_ENDORSEMENT(tx, pipe=tx, keys={"endorsers": keys.endorsers(endorsee, skill_key),
                                                  "skills": keys.endorsement_skills(endorsee),
                                                  "names": keys.endorsement_names(endorsee)},
                               endorser=member, skill_key=skill_key)
    # Endorsements received: the endorsers' footprints name the member.
    for skill_key in store.zrange(keys.endorsement_skills(member), 0, -1):
        for endorser in store.zrange(keys.endorsers(member, skill_key), 0, -1):
            tx.srem(keys.endorsed(endorser), f"{member} {skill_key}")
        tx.delete(keys.endorsers(member, skill_key))

    # People-you-may-know lists naming the member: its 2nd-degree network's.
    if connections:
        with store.pipeline(transaction=False) as pipe:
            for connection in connections:
                pipe.zrange(keys.connections(connection), 0, -1)
            second = {m for met in pipe.execute() for m in met} - {member}
        for other in second - others:
            tx.zrem(keys.suggestions(other), member)

    tx.zrem(keys.suggestions_due(), member)
    for kind in _MEMBER_KINDS:
        tx.delete(f"connections:{keys.member_tag(member)}:{kind}:{member}")
