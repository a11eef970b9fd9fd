"""The Redis round trips of the writes whose limit hit rides in their first reads
(``shared.http.app.joins_write_limits``), on one Redis node: a Redis Cluster's pipeline runs no
script, so there the hit keeps a round trip of its own (the cluster stack's share runs the
write-limit tests, not these)."""
from __future__ import annotations

from tests.support.trips import app_clients, round_trips


def test_a_new_follow_takes_three_redis_round_trips_its_limits_and_reads_being_one(apps, auth, unique):
    # One pipeline: the limits script (with the caller's entry), the followee's entry and follow
    # setting; then the follower's FOLLOW script; then the projection to the followee's followers.
    follows = apps("follows")
    ada, grace = unique("ada"), unique("grace")
    # The token verified, connections made, every script loaded (an earlier follow).
    assert follows.put(f"/v1/following/{unique('eve')}", headers=auth(ada)).status_code == 201

    def send():
        assert follows.put(f"/v1/following/{grace}", headers=auth(ada)).status_code == 201

    assert round_trips(app_clients(follows), send) == 3


def test_a_new_invitation_takes_four_redis_round_trips_its_limits_and_reads_being_one(apps, auth, unique):
    # One pipeline: the limits script (with the caller's entry), the invitee's entry, the pair's
    # open invitation and both members' connection counts; then the weekly cap's reservation,
    # the SEND script (which returns the pair's record) and both sides' projections.
    connections = apps("connections")
    ada, grace = unique("ada"), unique("grace")
    # The token verified, connections made, every script loaded (an earlier invitation).
    assert connections.post("/v1/invitations", json={"invitee": unique("eve")}, headers=auth(ada)).status_code == 201

    def send():
        assert connections.post("/v1/invitations", json={"invitee": grace}, headers=auth(ada)).status_code == 201

    assert round_trips(app_clients(connections), send) == 4


def test_a_follow_whose_store_forgot_the_limits_script_is_counted_once_and_made(two_instances, auth, unique):
    # The joined hit goes by SHA; a store that restarted answers NOSCRIPT, and the reads go again
    # with the script's text.
    ada = unique("ada")
    first, _ = two_instances
    first.application.extensions["rapport.store"].script_flush()

    answers = [first.put(f"/v1/following/{unique(f'm{i}')}", headers=auth(ada)).status_code for i in range(4)]

    assert answers == [201, 201, 201, 429]
