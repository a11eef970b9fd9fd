"""The one convention for Lua scripts, in every service.

A script is declared once, in its service's ``store.py``, with the names of its keys and of
its arguments::

    ACCEPT = LuaScript("accept", keys=("invitation", "outbox"), args=("member", "now"), source='''
        if redis.call('HGET', K.invitation, 'status') ~= 'pending' then return {'not_pending'} end
        ...
    ''')
    ACCEPT(client, keys={"invitation": k, "outbox": o}, member=m, now=t)

Inside the script ``K.<name>`` and ``A.<name>`` are the keys and arguments by name (a prelude
binds them from KEYS and ARGV); a last name starting with ``*`` takes the rest as a Lua list
(``K.timelines``, ``A.items``). Every key is passed in KEYS and all of them must share one hash
slot (``shared.slots``): the call refuses keys of two slots before it reaches Redis, on a single
node as on a cluster, so a script that would break on a Redis Cluster fails in every test.

Called on a client, the script runs by SHA and is loaded again when the server forgot it (a
restart); queued on a pipeline (``pipe=``) it is sent whole with EVAL, which cannot meet a
missing script in the middle of a MULTI/EXEC.

In a consumer's transaction the runner gives each script the marker of the event's part it
runs in (``with_marker``): a script that raises, or returns an error reply, writes
``failed`` there before it returns the error, in the same EXEC as the part's other commands.
"""
from __future__ import annotations

import functools
import hashlib
import re
from typing import Any, Mapping, Sequence

import redis

from shared.slots import check_one_slot

_NAME = re.compile(r"^\*?[a-z_][a-z0-9_]*$")


def _prelude(table: str, source: str, names: Sequence[str]) -> str:
    parts = []
    for i, name in enumerate(names, start=1):
        if name.startswith("*"):
            parts.append(f"{name[1:]} = {{unpack({source}, {i})}}")
        else:
            parts.append(f"{name} = {source}[{i}]")
    return f"local {table} = {{{', '.join(parts)}}}\n"


class LuaScript:
    """A Lua script with named keys and arguments; see the module's docstring."""

    def __init__(self, name: str, *, keys: Sequence[str], args: Sequence[str] = (), source: str):
        for names in (keys, args):
            bad = [n for n in names if not _NAME.match(n)]
            if bad:
                raise ValueError(f"script {name}: bad names {bad}")
            if any(n.startswith("*") for n in names[:-1]):
                raise ValueError(f"script {name}: only the last name may take the rest")
        self.name = name
        self.key_names = tuple(keys)
        self.arg_names = tuple(args)
        self.source = _prelude("K", "KEYS", self.key_names) + _prelude("A", "ARGV", self.arg_names) + source
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def pack(self, keys: Mapping[str, Any], args: Mapping[str, Any]) -> tuple[list, list]:
        """KEYS and ARGV in declaration order, from names; refuses a missing or unknown name."""
        return self._pack("key", self.key_names, keys), self._pack("argument", self.arg_names, args)

    def _pack(self, what: str, names: Sequence[str], given: Mapping[str, Any]) -> list:
        plain = [n.lstrip("*") for n in names]
        missing = [n for n in plain if n not in given]
        unknown = [n for n in given if n not in plain]
        if missing or unknown:
            raise TypeError(f"script {self.name}: missing {what}s {missing}, unknown {what}s {unknown}")
        packed: list = []
        for name, bare in zip(names, plain):
            value = given[bare]
            if name.startswith("*"):
                packed.extend(value)
            else:
                packed.append(value)
        return packed

    def __call__(self, client: redis.Redis, *, keys: Mapping[str, Any], pipe=None, **args: Any) -> Any:
        """Run the script on ``client``; with ``pipe``, queue it there instead (returns the pipe)."""
        key_list, arg_list = self.pack(keys, args)
        check_one_slot(key_list, f"script {self.name}")
        if pipe is not None:
            return pipe.eval(self.source, len(key_list), *key_list, *arg_list)
        try:
            return client.evalsha(self.sha, len(key_list), *key_list, *arg_list)
        except redis.exceptions.NoScriptError:
            return client.eval(self.source, len(key_list), *key_list, *arg_list)


    def queue_by_sha(self, pipe, *, keys: Mapping[str, Any], **args: Any) -> None:
        """Queue the script by SHA on a non-transactional pipeline, which the caller runs with
        ``execute(raise_on_error=False)``: a server that forgot it (a restart) answers
        ``NoScriptError`` in its place, and the caller sends the pipeline again with ``pipe=``
        (the text). Not for a MULTI/EXEC, whose other commands would run without it."""
        key_list, arg_list = self.pack(keys, args)
        check_one_slot(key_list, f"script {self.name}")
        pipe.evalsha(self.sha, len(key_list), *key_list, *arg_list)


def run_by_sha(client: redis.Redis, calls: Sequence[tuple["LuaScript", Mapping[str, Any], Mapping[str, Any]]]) -> list:
    """Run ``calls`` (script, keys, arguments) in one non-transactional pipeline, each script by
    its SHA; those a server forgot (a restart) go again by their text in a second one. For
    scripts whose order among themselves does not matter: reads, or writes that stand alone
    (each side of a pair, applied only at a newer version). Raises the first error."""
    with client.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            script.queue_by_sha(pipe, keys=keys, **args)
        replies = pipe.execute(raise_on_error=False)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
    if missing:
        with client.pipeline(transaction=False) as pipe:
            for i in missing:
                script, keys, args = calls[i]
                script(pipe, keys=keys, pipe=pipe, **args)
            for i, reply in zip(missing, pipe.execute(raise_on_error=False)):
                replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


FAILED = "failed"


@functools.lru_cache(maxsize=256)
def with_marker(source: str) -> str:
    """``source`` taking one more key, the last of KEYS: a marker (of a consumer's part) that
    says ``failed`` once the script raised or returned an error reply.

    The key is taken off KEYS before ``source`` runs, so the script sees its own keys only;
    the error is returned as it was (a Lua error as ``ERR <message>``). Redis rolls nothing
    back: what the script wrote before its error stays written. The marker is only changed
    when it exists (``XX``), and keeps its expiry.
    """
    return (
        "local part_marker_ = table.remove(KEYS)\n"
        "local ok_, reply_ = pcall(function()\n"
        f"{source}\n"
        "end)\n"
        "local failed_ = not ok_ or (type(reply_) == 'table' and reply_.err ~= nil)\n"
        "if not failed_ then return reply_ end\n"
        f"redis.call('SET', part_marker_, '{FAILED}', 'XX', 'KEEPTTL')\n"
        "if type(reply_) == 'table' and reply_.err ~= nil then return reply_ end\n"
        "return redis.error_reply('ERR ' .. tostring(reply_))\n"
    )
