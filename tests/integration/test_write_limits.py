"""Per-member write limits, counted in the real Redis so that they hold across API processes."""
from __future__ import annotations

import re

import pytest



def test_a_members_writes_over_the_limit_are_refused_whichever_process_serves_them(two_instances, auth, unique):
    ada = unique("ada")
    first, second = two_instances

    answers = [(first if i % 2 == 0 else second).put(f"/v1/following/{unique(f'm{i}')}", headers=auth(ada))
               for i in range(4)]

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    refused = answers[-1]
    assert refused.mimetype == "application/problem+json"
    assert refused.json["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Policy"] == '"writes-60s";q=3;w=60'
    match = re.fullmatch(r'"writes-60s";r=0;t=(\d+)', refused.headers["RateLimit"])
    assert match and int(match.group(1)) == int(refused.headers["Retry-After"])


def test_a_write_allowed_by_the_limit_carries_the_policy(two_instances, auth, unique):
    answer = two_instances[0].put(f"/v1/following/{unique('grace')}", headers=auth(unique("ada")))

    assert answer.status_code == 201
    assert answer.headers["RateLimit-Policy"] == '"writes-60s";q=3;w=60'


def test_one_members_limit_leaves_other_members_and_reads_alone(two_instances, auth, unique):
    ada, grace = unique("ada"), unique("grace")
    first, second = two_instances
    for i in range(3):
        assert first.put(f"/v1/following/{unique(f'm{i}')}", headers=auth(ada)).status_code == 201
    assert second.delete(f"/v1/following/{unique('m0')}", headers=auth(ada)).status_code == 429

    assert second.put(f"/v1/following/{ada}", headers=auth(grace)).status_code == 201
    assert second.get(f"/v1/following/{unique('m0')}", headers=auth(ada)).status_code == 200


def test_the_default_limits_allow_a_burst_of_writes(apps, auth, unique):
    follows, ada = apps("follows"), unique("ada")

    answers = [follows.put(f"/v1/following/{unique(f'm{i}')}", headers=auth(ada)).status_code for i in range(25)]

    assert answers == [201] * 25


def test_the_limits_script_reads_the_writers_member_entry_and_refuses_over_the_limit_all_the_same(settings, unique):
    from shared import members
    from shared.http.ratelimit import RateLimited, WriteLimits

    limits = WriteLimits(settings.store_url("follows"), "2/minute", settings.namespace, "follows", settings.shards)
    ada, grace, closed = unique("ada"), unique("grace"), unique("closed")
    store = limits.store
    store.hset(members.key("follows", settings, ada), mapping={"state": "active", "version": 1})
    store.hset(members.key("follows", settings, closed), mapping={"state": "closed", "version": 2})
    store.hset(members.key("follows", settings, grace), mapping={"name": "Grace"})  # an entry without a state

    assert limits.hit(ada, members.key("follows", settings, ada)) == "active"
    assert limits.hit(closed, members.key("follows", settings, closed)) == "closed"
    assert limits.hit(grace, members.key("follows", settings, grace)) == "active"
    nobody = unique.unregistered("nobody")
    assert limits.hit(nobody, members.key("follows", settings, nobody)) == ""
    assert limits.hit(ada) is None  # without the entry: the limits alone
    with pytest.raises(RateLimited):
        limits.hit(ada, members.key("follows", settings, ada))


def test_a_follow_refused_by_the_limit_in_its_first_reads_writes_nothing(two_instances, auth, unique):
    # The follow view takes its limit hit in the pipeline of its first reads (joins_write_limits).
    ada, grace = unique("ada"), unique("grace")
    first, _ = two_instances
    for i in range(3):
        assert first.put(f"/v1/following/{unique(f'm{i}')}", headers=auth(ada)).status_code == 201

    refused = first.put(f"/v1/following/{grace}", headers=auth(ada))

    assert refused.status_code == 429 and refused.json["code"] == "rate_limited"
    assert first.get(f"/v1/following/{grace}", headers=auth(ada)).json["following"] is False


def test_a_follow_answered_before_its_first_reads_counts_against_the_limit(two_instances, auth, unique):
    ada = unique("ada")
    first, _ = two_instances
    bad = first.put(f"/v1/following/{unique('m0')}", json={"notify_on_post": "often"}, headers=auth(ada))
    assert bad.status_code == 422

    answers = [first.put(f"/v1/following/{unique(f'm{i}')}", headers=auth(ada)).status_code for i in range(1, 4)]

    assert answers == [201, 201, 429]
