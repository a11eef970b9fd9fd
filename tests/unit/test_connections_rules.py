"""Rules of the connections service that need no I/O: how an invitation looks to each side,
how refusals are worded, what the HTTP schemas accept, how keys are built."""
from __future__ import annotations

import uuid

import pytest
from marshmallow import ValidationError

from services.connections import store as keys
from services.connections.invitations import DAY_MS, Invitation, _refusal
from services.connections.network import Relationship, profile_access
from services.connections.schemas import InvitationArgs, SettingsPatchSchema
from shared.clock import rfc3339
from shared.members import ACTIVE, CLOSED, Member, Remote
from shared.settings import Settings
from shared.slots import check_one_slot

NOW = 1_800_000_000_000


def invitation(status: str) -> Invitation:
    return Invitation("i1", "ada", "grace", "hello", status, NOW, NOW + 5 if status != "pending" else None)


def test_an_ignored_invitation_looks_pending_to_its_inviter_only():
    ignored = invitation("ignored")
    assert ignored.seen_by("ada").status == "pending" and ignored.seen_by("ada").decided_at_ms is None
    assert ignored.seen_by("grace").status == "ignored"


@pytest.mark.parametrize("status", ["pending", "accepted", "withdrawn"])
def test_other_states_look_the_same_to_both_sides(status):
    assert invitation(status).seen_by("ada") == invitation(status).seen_by("grace") == invitation(status)


def test_the_cooldown_refusal_says_when_it_lifts():
    until = NOW + 21 * DAY_MS
    problem = _refusal(["reinvite_cooldown", str(until)], "ada", "grace", NOW, Settings())
    assert (problem.status, problem.code) == (409, "reinvite_cooldown")
    assert problem.extra == {"retry_after": 21 * 24 * 3600, "lifts_at": rfc3339(until)}
    assert rfc3339(until) in problem.detail


def test_the_weekly_limit_refusal_says_when_it_lifts():
    problem = _refusal(["invitation_limit_reached", str(NOW + 1500)], "ada", "grace", NOW, Settings())
    assert (problem.status, problem.code) == (429, "invitation_limit_reached")
    assert problem.extra["retry_after"] == 2 and problem.extra["limit"] == 100


def test_only_a_connection_may_message():
    friend = Relationship("grace", 1, True, None, 3)
    stranger = Relationship("linus", 3, False, {"id": "i1", "direction": "sent"}, 0)
    assert (friend.can_message, stranger.can_message) == (True, False)


GRACE = Member("grace", ACTIVE)
GRACE_CONNECTIONS_ONLY = Member("grace", ACTIVE, profile_visibility="connections")


@pytest.mark.parametrize("connected, blocked, member, remote, access", [
    (True, False, GRACE, None, "full"),
    (True, False, GRACE_CONNECTIONS_ONLY, None, "full"),
    (False, False, GRACE, None, "limited"),
    (False, False, GRACE_CONNECTIONS_ONLY, None, "minimal"),
    (True, True, GRACE, None, "none"),
    (False, False, Member("grace", CLOSED), None, "none"),
    (False, False, None, None, "none"),
    (False, False, None, Remote(False), "none"),
    (False, False, None, Remote(None), "none"),
    (False, False, None, Remote(True, "limited"), "limited"),
])
def test_profile_access_names_the_view_a_profile_read_serves(connected, blocked, member, remote, access):
    assert profile_access(connected, blocked, member, remote) == access


@pytest.mark.parametrize("body", [{"invitee": "ada", "message": "m" * 301}, {"invitee": "a b"}, {},
                                  {"invitee": "ada", "extra": 1}])
def test_an_invitation_body_is_strict(body):
    with pytest.raises(ValidationError):
        InvitationArgs().load(body)


def test_an_invitation_body_may_omit_the_message():
    assert InvitationArgs().load({"invitee": "ada"}) == {"invitee": "ada", "message": None}


def test_settings_accept_only_the_three_visibilities():
    for value in ("everyone", "connections", "only_me"):
        assert SettingsPatchSchema().load({"connections_visibility": value})
    with pytest.raises(ValidationError):
        SettingsPatchSchema().load({"connections_visibility": "public"})


def test_a_members_keys_share_the_slot_of_the_members_shard():
    member_keys = (keys.connections("ada"), keys.received("ada"), keys.sent("ada"), keys.open_invitations("ada"),
                   keys.blocks("ada"), keys.blocked_by("ada"), keys.projected("ada"), keys.invitation_log("ada"),
                   keys.member_settings("ada"), keys.endorsers("ada", "go"), keys.suggestions("ada"),
                   keys.suggestions_state("ada"))
    for key in member_keys:
        assert key.startswith("connections:" + keys.member_tag("ada") + ":")
    check_one_slot(member_keys)


def test_a_pairs_records_share_the_slot_of_the_pairs_shard_whichever_member_comes_first():
    invitation_id = keys.new_id("grace", "ada", uuid.uuid4().hex)
    pair_keys = (keys.relationship("ada", "grace"), keys.relationship("grace", "ada"), keys.invitation(invitation_id),
                 keys.introduction(keys.new_id("ada", "grace", uuid.uuid4().hex)),
                 keys.reinvite_cooldown("ada", "grace"), keys.reinvite_cooldown("grace", "ada"))
    assert keys.relationship("ada", "grace") == keys.relationship("grace", "ada")
    assert all(key.startswith("connections:" + keys.pair_tag("ada", "grace") + ":") for key in pair_keys)
    check_one_slot(pair_keys)


def test_an_id_this_service_did_not_mint_names_no_shard():
    assert keys.id_tag("i1") is None
    assert keys.id_tag("f" * 32) is None  # shard 0xffff: past the number of shards
    assert keys.id_tag(keys.new_id("ada", "grace", "0" * 32)) == keys.pair_tag("ada", "grace")


def test_a_verified_token_is_refused_once_it_expires():
    # shared.auth remembers verified tokens (the relationship lookup's throughput depends on it).
    import time

    from shared import auth
    from shared.problems import Unauthorized

    secret = "s" * 32
    # exp is in whole seconds: 2 s leave at least one second of validity for the reads below.
    token = auth.mint_token("ada", secret, ttl_seconds=2)
    assert auth.member_from_header(f"Bearer {token}", secret) == "ada"
    assert auth.member_from_header(f"Bearer {token}", secret) == "ada"
    with pytest.raises(Unauthorized):
        auth.member_from_header(f"Bearer {token}", "another-secret-" + "x" * 32)

    def refused():
        try:
            auth.member_from_header(f"Bearer {token}", secret)
        except Unauthorized as problem:
            return problem.code
        return None

    deadline = time.monotonic() + 5
    while (code := refused()) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert code == "token_expired"
