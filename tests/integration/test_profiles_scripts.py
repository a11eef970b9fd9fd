"""The profiles store's scripts called directly on the real Redis: each reply code, and that
each refuses keys of two slots before reaching Redis."""
from __future__ import annotations

import pytest
import redis

from services.profiles import network
from services.profiles import store as scripts
from services.profiles.search import SEPARATOR
from services.profiles.recommendations import new_id
from shared.bus.outbox import Outbox
from services.profiles.store import Keys
from shared import store_client
from shared.slots import CrossSlot


@pytest.fixture(scope="module")
def store(settings):
    return store_client.connect(settings.store_url("profiles"), decode_responses=True)


@pytest.fixture(scope="module")
def keys(settings):
    return Keys(settings.shards)


@pytest.fixture(scope="module")
def outbox(settings):
    """Streams no relay reads: the entries these tests write are not events."""
    return Outbox("profiles", settings.replace(namespace=f"{settings.namespace}-scripts"))


def save(store, keys, outbox, member, mode="put", expected="", announce="1", name="Ada"):
    return scripts.SAVE_PROFILE(store, keys={"member": keys.member(member), "outbox": outbox.key_for(keys.tag(member))},
                                mode=mode, expected=expected, doc='{"name":"%s"}' % name, name=name, headline="",
                                now=1, announce=announce, topic="t", event_key=member,
                                registered='{"version":0}', updated='{"version":0}')


def close(store, keys, outbox, member):
    return scripts.CLOSE(store, keys={"member": keys.member(member), "outbox": outbox.key_for(keys.tag(member))},
                         now=2, topic="t", event_key=member, event='{"version":0}')


def test_save_profile_answers_created_replaced_retry_unregistered_and_closed(store, keys, outbox, unique):
    ada, ghost = unique("ada"), unique("ghost")
    assert save(store, keys, outbox, ada) == ["created", 1]
    assert save(store, keys, outbox, ada) == ["replaced", 2]
    assert save(store, keys, outbox, ada, mode="patch", expected="1") == ["retry", 0]
    assert save(store, keys, outbox, ada, mode="patch", expected="2") == ["replaced", 3]
    assert save(store, keys, outbox, ghost, mode="patch", expected="0") == ["unregistered", 0]
    assert close(store, keys, outbox, ada) == ["closed", 4]
    assert save(store, keys, outbox, ada) == ["closed", 0]


def test_the_outbox_entry_carries_the_version_the_script_numbered(store, keys, outbox, unique):
    ada = unique("ada")
    save(store, keys, outbox, ada)
    save(store, keys, outbox, ada)
    entries = [f["value"] for _, f in store.xrange(outbox.key_for(keys.tag(ada))) if f["key"] == ada]
    assert entries == ['{"version":1}', '{"version":2}']


def test_set_visibility_answers_changed_same_unregistered_and_closed(store, keys, outbox, unique):
    ada, ghost = unique("ada"), unique("ghost")

    def set_(member, value):
        return scripts.SET_VISIBILITY(store, keys={"member": keys.member(member),
                                                   "outbox": outbox.key_for(keys.tag(member))},
                                      visibility=value, topic="t", event_key=member, event='{"version":0}')
    save(store, keys, outbox, ada)
    assert set_(ada, "everyone") == ["same", 0]
    assert set_(ada, "connections") == ["changed", 2]
    assert set_(ghost, "connections") == ["unregistered", 0]
    close(store, keys, outbox, ada)
    assert set_(ada, "everyone") == ["closed", 0]


def test_close_answers_closed_already_and_unregistered(store, keys, outbox, unique):
    ada, ghost = unique("ada"), unique("ghost")
    save(store, keys, outbox, ada)
    assert close(store, keys, outbox, ada) == ["closed", 2]
    assert close(store, keys, outbox, ada) == ["already", 0]
    assert close(store, keys, outbox, ghost) == ["unregistered", 0]


def project(store, keys, member, other, version, change):
    return network.project(store, keys, member, other, version, change, entry=f"name{SEPARATOR}{other}")


def test_project_pair_applies_only_newer_versions_and_never_to_a_closed_member(store, keys, outbox, unique):
    ada, grace = unique("ada"), unique("grace")
    assert project(store, keys, ada, grace, 2, "connected") == "applied"
    assert project(store, keys, ada, grace, 1, "disconnected") == "stale"
    assert project(store, keys, ada, grace, 2, "disconnected") == "stale"
    assert store.sismember(keys.connections(ada), grace)
    assert store.hget(keys.connection_names(ada), grace) == f"name{SEPARATOR}{grace}"
    assert project(store, keys, ada, grace, 3, "blocked") == "applied"
    assert store.hget(keys.connection_names(ada), grace) is None
    assert (store.sismember(keys.connections(ada), grace), store.sismember(keys.blocks(ada), grace)) == (False, True)
    with pytest.raises(redis.ResponseError, match="unknown change"):
        project(store, keys, ada, grace, 4, "befriended")
    save(store, keys, outbox, ada)
    close(store, keys, outbox, ada)
    assert project(store, keys, ada, grace, 9, "unblocked") == "closed"


def test_endorse_counts_an_endorser_once_and_unendorse_takes_it_back(store, keys, unique):
    ada, grace = unique("ada"), unique("grace")
    k = {"member": keys.member(ada), "endorsers": keys.endorsers(ada, "lua"), "counts": keys.endorsement_counts(ada)}
    assert scripts.ENDORSE(store, keys=k, endorser=grace, skill="lua") == 1
    assert scripts.ENDORSE(store, keys=k, endorser=grace, skill="lua") == 0
    assert store.hget(keys.endorsement_counts(ada), "lua") == "1"
    back = {"endorsers": keys.endorsers(ada, "lua"), "counts": keys.endorsement_counts(ada)}
    assert scripts.UNENDORSE(store, keys=back, endorser=grace, skill="lua") == 1
    assert scripts.UNENDORSE(store, keys=back, endorser=grace, skill="lua") == 0
    assert store.hget(keys.endorsement_counts(ada), "lua") is None


def write(store, keys, outbox, author, recipient, rid):
    return scripts.WRITE_RECOMMENDATION(
        store, keys={"recipient": keys.member(recipient), "connections": keys.connections(recipient),
                     "blocks": keys.blocks(recipient), "blocked_by": keys.blocked_by(recipient),
                     "record": keys.recommendation(rid), "received": keys.received(recipient),
                     "outbox": outbox.key_for(keys.tag(recipient))},
        author=author, recipient_id=recipient, id=rid, relationship="r", text="t", now=5, topic="t",
        event_key=recipient, event="{}")


def test_write_recommendation_answers_written_not_connected_not_found_and_exists(store, keys, outbox, unique):
    ada, grace, eve, ghost = unique("ada"), unique("grace"), unique("eve"), unique("ghost")
    save(store, keys, outbox, ada)
    project(store, keys, ada, grace, 1, "connected")
    project(store, keys, ada, eve, 1, "blocked")
    rid = new_id(keys, ada)
    assert write(store, keys, outbox, grace, ada, rid) == "written"
    assert write(store, keys, outbox, grace, ada, rid) == "exists"
    assert write(store, keys, outbox, unique("linus"), ada, new_id(keys, ada)) == "not_connected"
    assert write(store, keys, outbox, eve, ada, new_id(keys, ada)) == "not_found"
    assert write(store, keys, outbox, grace, ghost, new_id(keys, ghost)) == "not_found"


def test_decide_and_erase_recommendation_reply_codes(store, keys, outbox, unique):
    ada, grace = unique("ada"), unique("grace")
    save(store, keys, outbox, ada)
    project(store, keys, ada, grace, 1, "connected")
    rid = new_id(keys, ada)
    write(store, keys, outbox, grace, ada, rid)
    k = {"record": keys.recommendation(rid), "received": keys.received(ada), "accepted": keys.accepted(ada),
         "outbox": outbox.key_for(keys.tag(ada))}

    def decide(status):
        return scripts.DECIDE_RECOMMENDATION(store, keys=k, id=rid, status=status, now=6, topic="t", event_key=ada,
                                             event="{}")
    assert decide("accepted") == "decided"
    assert decide("accepted") == "same"
    assert store.zscore(keys.accepted(ada), rid) == 5
    assert decide("hidden") == "decided"
    assert store.zscore(keys.accepted(ada), rid) is None
    erase = {"record": keys.recommendation(rid), "received": keys.received(ada), "accepted": keys.accepted(ada)}
    assert scripts.ERASE_RECOMMENDATION(store, keys=erase, id=rid) == 1
    assert scripts.ERASE_RECOMMENDATION(store, keys=erase, id=rid) == 0
    assert decide("accepted") == "not_found"


def test_mark_indexed_applies_only_a_newer_version(store, keys, unique):
    ada = unique("ada")
    k = {"indexed": keys.indexed(ada)}
    assert scripts.MARK_INDEXED(store, keys=k, version=2, name="Ada") == 1
    assert scripts.MARK_INDEXED(store, keys=k, version=2, name="Other") == 0
    assert store.hget(keys.indexed(ada), "name") == "Ada"


def test_a_recommendation_id_falls_in_its_recipients_shard(keys, unique):
    ada = unique("ada")
    for _ in range(20):
        assert keys.tag(new_id(keys, ada)) == keys.tag(ada)


def test_every_script_refuses_keys_of_two_slots(store, keys, outbox, unique):
    ada, grace = unique("ada"), unique("grace")
    while keys.tag(grace) == keys.tag(ada):
        grace += "x"
    with pytest.raises(CrossSlot):
        scripts.ENDORSE(store, keys={"member": keys.member(ada), "endorsers": keys.endorsers(grace, "lua"),
                                     "counts": keys.endorsement_counts(ada)}, endorser=grace, skill="lua")
    with pytest.raises(CrossSlot):
        save(store, keys, profiles_outbox_with_wrong_tag(outbox, keys, grace), ada)


def profiles_outbox_with_wrong_tag(outbox, keys, other):
    class Wrong:
        def key_for(self, tag):
            return outbox.key_for(keys.tag(other))
    return Wrong()
