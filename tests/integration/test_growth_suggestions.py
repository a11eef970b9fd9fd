"""People you may know (PRODUCT.md, Network): 2nd-degree members ranked by mutual
connections, ties by member id; never oneself, a connection, a pending invitation either
way, or a blocked member either way."""
from __future__ import annotations

import pytest

from tests.support.infra import eventually
from shared import store_client


@pytest.fixture
def api(apps):
    return apps("connections")


def suggested(api, auth, member, query=""):
    response = api.get(f"/v1/suggestions{query}", headers=auth(member))
    assert response.status_code == 200, response.json
    return response.json


def pairs(page):
    return [(s["member"], s["mutual_connections"]) for s in page["items"]]


@pytest.fixture
def network(unique, connect):
    """ada knows f1, f2, f3. carol knows all three, bob and dave two each, erin one."""
    ada = unique("ada")
    f1, f2, f3 = unique("f1"), unique("f2"), unique("f3")
    bob, carol, dave, erin = unique("bob"), unique("carol"), unique("dave"), unique("erin")
    for friend in (f1, f2, f3):
        connect(ada, friend)
    for friend in (f1, f2, f3):
        connect(carol, friend)
    connect(bob, f1), connect(bob, f2), connect(dave, f2), connect(dave, f3), connect(erin, f3)
    return ada, bob, carol, dave, erin


def settled(api, auth, member, expected, query=""):
    """The suggestions once the worker has caught up with the network's last changes: a list
    made stale by a second-hand change is served while the worker recomputes it."""
    def page_if_settled():
        page = suggested(api, auth, member, query)
        return page if pairs(page) == expected else None
    return eventually(page_if_settled, timeout=15, message=f"suggestions of {member} settle on {expected}")


def test_second_degree_members_ranked_by_mutual_connections_ties_by_id(api, auth, network):
    ada, bob, carol, dave, erin = network

    settled(api, auth, ada, [(carol, 3), (bob, 2), (dave, 2), (erin, 1)])


def test_suggestions_are_paged_with_a_stable_cursor(api, auth, network):
    ada, bob, carol, dave, erin = network

    settled(api, auth, ada, [(carol, 3), (bob, 2), (dave, 2), (erin, 1)])
    first = suggested(api, auth, ada, "?limit=2")
    rest = suggested(api, auth, ada, f"?limit=2&cursor={first['next_cursor']}")

    assert pairs(first) + pairs(rest) == [(carol, 3), (bob, 2), (dave, 2), (erin, 1)]
    assert rest["next_cursor"] is None
    assert api.get("/v1/suggestions?cursor=%25%25", headers=auth(ada)).json["code"] == "invalid_cursor"


def test_never_a_connection_a_pending_invitation_or_a_blocked_member(api, auth, network, connect):
    ada, bob, carol, dave, erin = network
    # Kept with all four before the changes below: the exclusions are the reads' work.
    settled(api, auth, ada, [(carol, 3), (bob, 2), (dave, 2), (erin, 1)])

    connect(ada, carol)
    api.post("/v1/invitations", json={"invitee": ada}, headers=auth(bob))
    api.put(f"/v1/blocks/{ada}", headers=auth(erin))

    assert [m for m, _ in pairs(suggested(api, auth, ada))] == [dave]
    assert ada not in [m for m, _ in pairs(suggested(api, auth, erin))]
    api.put(f"/v1/blocks/{dave}", headers=auth(ada))
    assert pairs(suggested(api, auth, ada)) == []


def test_a_new_connection_brings_its_network_at_once(api, auth, unique, connect):
    ada, grace, linus, mary = unique("ada"), unique("grace"), unique("linus"), unique("mary")
    connect(ada, mary), connect(grace, linus)
    assert pairs(suggested(api, auth, ada)) == [] and pairs(suggested(api, auth, grace)) == []

    connect(ada, grace)

    # Each one's own change: the first read shows the other's network, whether or not the
    # worker has recomputed their kept lists yet.
    assert pairs(suggested(api, auth, ada)) == [(linus, 1)]
    assert pairs(suggested(api, auth, grace)) == [(mary, 1)]


# --- precomputed by the connections worker (docs/suggestions.md) ---------------------------

@pytest.fixture
def store(settings):
    client = store_client.connect(settings.store_url("connections"))
    yield client
    client.close()


def kept(store, member):
    """The list the worker keeps for ``member``, best first, and when it was computed."""
    from services.connections import store as keys

    ranked = store.zrange(keys.suggestions(member), 0, -1, withscores=True)
    at = store.hget(keys.suggestions_state(member), "computed_at")
    return sorted(((m, int(s)) for m, s in ranked), key=lambda item: (-item[1], item[0])), (int(at) if at else None)


def test_after_two_members_connect_the_new_network_is_listed_before_the_first_read(
        api, auth, unique, connect, workers, store):
    workers("connections")
    ada, grace, linus, mary, zed = unique("ada"), unique("grace"), unique("linus"), unique("mary"), unique("zed")
    connect(ada, zed), connect(grace, linus), connect(grace, mary)

    connect(ada, grace)

    eventually(lambda: kept(store, ada)[0] == [(linus, 1), (mary, 1)] and kept(store, grace)[0] == [(zed, 1)],
               message="the lists of ada and grace precomputed")
    # The reads serve the kept lists. (Events of different member pairs sit on different
    # partitions: a second-hand one handled after may mark a list stale, and the worker then
    # recomputes it after the read, never on it.) For linus, mary and zed the connection is
    # second-hand: their lists are flagged, not recomputed, until they read them
    # (test_a_connections_new_connection_reaches_the_list_without_a_computation_on_the_read).
    assert pairs(suggested(api, auth, ada)) == [(linus, 1), (mary, 1)]
    assert pairs(suggested(api, auth, grace)) == [(zed, 1)]


def test_a_connections_new_connection_reaches_the_list_without_a_computation_on_the_read(
        api, auth, unique, connect, workers, store):
    workers("connections")
    ada, grace, linus, zed = unique("ada"), unique("grace"), unique("linus"), unique("zed")
    connect(grace, linus), connect(ada, grace)
    eventually(lambda: kept(store, ada)[0] == [(linus, 1)], message="ada's list precomputed")

    connect(grace, zed)  # a second-hand change: ada's own connections stay the same

    settled(api, auth, ada, [(linus, 1), (zed, 1)])


def test_removing_a_connection_recomputes_both_lists(api, auth, unique, connect, workers, store):
    workers("connections")
    ada, grace, linus, zed = unique("ada"), unique("grace"), unique("linus"), unique("zed")
    connect(ada, zed), connect(grace, linus), connect(ada, grace)
    eventually(lambda: kept(store, ada)[0] == [(linus, 1)] and kept(store, grace)[0] == [(zed, 1)])

    assert api.delete(f"/v1/connections/{grace}", headers=auth(ada)).status_code == 204

    eventually(lambda: kept(store, ada)[0] == [] and kept(store, grace)[0] == [],
               message="both lists recomputed without each other's network")
    assert pairs(suggested(api, auth, ada)) == []


def test_an_unblocked_member_comes_back_into_the_list(api, auth, unique, connect, workers, store):
    workers("connections")
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(grace, linus), connect(ada, grace)
    settled(api, auth, ada, [(linus, 1)]), settled(api, auth, linus, [(ada, 1)])
    assert api.put(f"/v1/blocks/{linus}", headers=auth(ada)).status_code == 204
    eventually(lambda: kept(store, ada)[0] == [] and kept(store, linus)[0] == [],
               message="both lists recomputed without the other")
    assert pairs(suggested(api, auth, ada)) == [] and pairs(suggested(api, auth, linus)) == []

    assert api.delete(f"/v1/blocks/{linus}", headers=auth(ada)).status_code == 204

    eventually(lambda: kept(store, ada)[0] == [(linus, 1)] and kept(store, linus)[0] == [(ada, 1)],
               message="both lists recomputed with the other again")
    assert pairs(suggested(api, auth, ada)) == [(linus, 1)]
    assert pairs(suggested(api, auth, linus)) == [(ada, 1)]


def test_a_list_older_than_the_refresh_bound_is_served_then_recomputed_by_the_worker(
        api, auth, unique, connect, workers, store):
    from services.connections import store as keys
    from services.connections.suggestions import REFRESH_AFTER_MS
    from shared.clock import now_ms

    workers("connections")
    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    connect(grace, linus), connect(ada, grace)
    eventually(lambda: kept(store, ada)[0] == [(linus, 1)], message="ada's list precomputed")
    old = now_ms() - REFRESH_AFTER_MS - 1
    store.hset(keys.suggestions_state(ada), "computed_at", old)

    assert pairs(suggested(api, auth, ada)) == [(linus, 1)]  # served as it is, not computed on the read

    eventually(lambda: kept(store, ada)[1] > old + REFRESH_AFTER_MS, message="the worker refreshed ada's old list")


def test_a_replayed_event_older_than_the_list_does_not_queue_it_and_a_newer_change_gets_it_recomputed(unique, connect, workers, store, settings):
    from services.connections import suggestions
    from shared.clock import now_ms

    workers("connections")
    ada, grace = unique("ada"), unique("grace")
    connect(ada, grace)
    at = eventually(lambda: kept(store, ada)[1])

    with store.pipeline(transaction=True) as tx:
        assert suggestions.queue_refresh(store, tx, (ada,), at - suggestions.ALREADY_IN_LIST_MARGIN_MS) == []
        tx.execute()
    with store.pipeline(transaction=True) as tx:
        assert suggestions.queue_refresh(store, tx, (ada,), now_ms()) == [ada]
        tx.execute()
    eventually(lambda: kept(store, ada)[1] > at, message="the worker recomputed the list a newer change queued")


@pytest.fixture
def unrelayed(store, settings):
    """The connections service's writes with their events held back from the worker (an outbox
    no relay reads): the state a read meets before the worker has handled a change."""
    from services.connections import blocks, invitations
    from shared.bus.outbox import Outbox

    outbox = Outbox("connections", settings.replace(namespace=f"{settings.namespace}-unrelayed"))

    class Writes:
        def connect(self, a: str, b: str) -> None:
            invitation = invitations.send(store, outbox, settings, a, b)
            invitations.accept(store, outbox, settings, b, invitation.id)

        def block(self, blocker: str, blocked: str) -> None:
            assert blocks.block(store, outbox, blocker, blocked)

        def unblock(self, blocker: str, blocked: str) -> None:
            assert blocks.unblock(store, outbox, blocker, blocked)

    yield Writes()
    store.delete(outbox.key)


def test_a_read_right_after_an_unblock_lists_the_unblocked_member_again(api, auth, unique, store, unrelayed):
    from services.connections import suggestions

    ada, grace, linus = unique("ada"), unique("grace"), unique("linus")
    unrelayed.connect(grace, linus), unrelayed.connect(ada, grace)
    unrelayed.block(ada, linus)
    for member in (ada, linus):
        suggestions.compute(store, member)  # as the worker does on block.added
    assert kept(store, ada)[0] == [] and kept(store, linus)[0] == []

    unrelayed.unblock(ada, linus)  # the worker has not handled block.removed yet

    assert pairs(suggested(api, auth, ada)) == [(linus, 1)]
    assert pairs(suggested(api, auth, linus)) == [(ada, 1)]


@pytest.mark.parametrize("read_items", [50_000, 3], ids=["one pipeline", "a pipeline per few items"])
def test_mutual_counts_are_the_shared_connections_counted_whichever_side_is_smaller(store, unique, monkeypatch,
                                                                                    read_items):
    from services.connections import network
    from services.connections import store as keys

    ada = unique("ada")
    mine = [f"{ada}-c{i}" for i in range(network.MSCORE_CHUNK + 5)]  # ZMSCOREs of more than one chunk
    small, big, none = unique("small"), unique("big"), unique("none")
    monkeypatch.setattr(network, "COUNT_READ_ITEMS", read_items)
    store.zadd(keys.connections(ada), {m: i for i, m in enumerate(mine)})
    store.zadd(keys.connections(small), {mine[0]: 1, mine[7]: 2, f"{ada}-stranger": 3})  # read whole
    store.zadd(keys.connections(big), {**{m: 1 for m in mine[::3]},  # scored against ada's
                                       **{f"{ada}-far{i}": 1 for i in range(len(mine))}})
    try:
        counts = network.mutual_counts(store, store.zrange(keys.connections(ada), 0, -1), [small, big, none])

        assert counts == {small: 2, big: len(mine[::3]), none: 0}
        assert counts == {other: len(network.shared_connections(store, ada, other)) for other in (small, big, none)}
    finally:
        store.delete(keys.connections(ada), keys.connections(small), keys.connections(big))
