"""What HTTP-level tests of every service check the same way."""
from __future__ import annotations


def assert_problem(response, status: int, code: str | None = None) -> dict:
    """``response`` is an RFC 9457 problem with this status (and this ``code``); returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body
