"""Members in the HTTP APIs: a caller without a profile writes nothing, and nobody acts
towards a member who does not exist.

``install(app)`` (each service's app factory) adds a check to every write (POST, PUT, PATCH,
DELETE under /v1): a caller who never registered, or whose account is closed, gets 403
``profile_required``. Reads stay open to them: they name nothing but the caller's own empty
lists, or answer what the service holds of another member.

Views that act towards a member call ``require_member(id)`` before their rule: 404
``member_not_found`` when the member never registered or closed their account. Both read the
service's replica (``shared.members``), and on a miss only ask the profiles API with the
caller's own token, so a follow sent right after a first ``PUT /v1/profile`` is not refused.
"""
from __future__ import annotations

from flask import Flask, current_app, g, request

from shared.http.app import DEFERRED_WRITE_CHECKS, MEMBER_DIRECTORY, PENDING_HIT
from shared.http.ratelimit import WRITE_METHODS
from shared.members import UNREAD, Directory, Member, Remote
from shared.problems import Forbidden, NotFound

DIRECTORY = MEMBER_DIRECTORY


class MemberNotFound(NotFound):
    code, title = "member_not_found", "No such member"


class ProfileRequired(Forbidden):
    code, title = "profile_required", "Profile required"


def install(app: Flask, directory: Directory | None = None) -> None:
    """Give ``app`` its member directory and the write check; call after ``create_service_app``
    (the check needs the caller its authentication named)."""
    app.extensions[DIRECTORY] = directory or Directory(
        app.config["RAPPORT_SERVICE"], app.config["RAPPORT_SETTINGS"], app.extensions["rapport.store"])
    app.before_request(_require_profile_for_writes)
    app.extensions[DEFERRED_WRITE_CHECKS].append(_check_profile)


def directory() -> Directory:
    return current_app.extensions[DIRECTORY]


def _authorization() -> str:
    return request.headers.get("Authorization", "")


def _require_profile_for_writes() -> None:
    if request.method not in WRITE_METHODS or request.url_rule is None:
        return
    if getattr(g, "member", None) is None:  # a public endpoint: nobody to check
        return
    if PENDING_HIT in g:  # the view's first reads read the caller's entry: checked there
        return
    _check_profile()


def _check_profile() -> None:
    member = g.member
    # The write limits' script read the caller's entry already, when the service counts them.
    if not directory().caller_registered(member, _authorization(), g.get("caller_state", UNREAD)):
        raise ProfileRequired("Create your profile first (PUT /v1/profile on the profiles service); "
                              "a closed account writes nothing.")


def require_member(member: str, field: str = "member", entry: dict | object = UNREAD) -> None:
    """404 ``member_not_found`` unless ``member`` exists (registered, account not closed).
    ``entry``: their replica entry when the view read it already, in a round trip of its own."""
    if not directory().exists(member, _authorization(), entry):
        raise MemberNotFound(f"No member {member!r}.", field=field)


def member_as_seen(member: str) -> tuple[Member | None, Remote | None]:
    """The replica's entry of ``member`` and, on a miss, what the profiles API told the caller."""
    return directory().member(member, _authorization())
