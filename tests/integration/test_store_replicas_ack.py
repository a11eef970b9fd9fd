"""A write answers 2xx only once a replica of its store holds it (``store_replicas_ack``): asking
for more replicas than the store has (the default stack's has none, each cluster primary one),
the write is stored and answered 503."""
from __future__ import annotations

from services.follows.app import create_app


def test_a_write_no_replica_confirmed_is_answered_503_store_not_replicated_and_stays_stored(settings, auth,
                                                                                              unique):
    waiting = settings.replace(store_replicas_ack=2, store_replicas_ack_timeout_ms=50)
    api = create_app({"TESTING": True}, settings=waiting).test_client()
    ada, grace = unique("ada"), unique("grace")

    answer = api.put(f"/v1/following/{grace}", headers=auth(ada))

    assert answer.status_code == 503
    assert answer.mimetype == "application/problem+json"
    assert answer.json["code"] == "store_not_replicated"
    assert answer.headers["Retry-After"] == "1"
    assert api.get(f"/v1/following/{grace}", headers=auth(ada)).json["following"] is True


def test_without_replicas_asked_for_a_write_answers_at_once(settings, auth, unique):
    api = create_app({"TESTING": True}, settings=settings.replace(store_replicas_ack=0)).test_client()

    assert api.put(f"/v1/following/{unique('grace')}", headers=auth(unique("ada"))).status_code == 201
