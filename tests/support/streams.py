"""A test client of a server-sent events stream (``/v1/notifications/stream``,
``/v1/conversations/stream``) over a real HTTP connection."""
from __future__ import annotations

import json

import requests


class EventStream:
    """A client of the stream at ``base + path`` that yields parsed server-sent events.

    ``only`` names the one kind of event ``next_event`` returns (others are skipped, as are
    comments and keep-alives); without it every event is returned, with its name as ``event``.
    """

    def __init__(self, base: str, path: str, token: str | None, last_event_id: str | None = None,
                 ticket: str | None = None, only: str | None = None):
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.only = only
        self.response = requests.get(f"{base}{path}", headers=headers, stream=True,
                                     params={"ticket": ticket} if ticket else None, timeout=(5, 10))
        self.lines = self.response.iter_lines(chunk_size=None, decode_unicode=True)

    def next_event(self) -> dict:
        """The next event: its data's fields, with ``event_id`` (and ``event``, its name, when
        the stream was opened without ``only``)."""
        fields: dict = {}
        for line in self.lines:
            if line == "":
                name = fields.get("event")
                if name is not None and self.only in (None, name):
                    named = {} if self.only else {"event": name}
                    return {**named, "event_id": fields["id"], **json.loads(fields["data"])}
                fields = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.lstrip(" ")
        raise AssertionError("the stream ended")

    def close(self):
        self.response.close()
