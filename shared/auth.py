"""JWT bearer auth: HS256, ``sub`` is the caller's member id, ``exp`` required."""
from __future__ import annotations

import re
import time

import jwt

from shared.problems import Invalid, Unauthorized

MEMBER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MEMBER_ID_RULE = "1-64 characters of A-Z a-z 0-9 _ . -"


def is_member_id(value: object) -> bool:
    return isinstance(value, str) and MEMBER_ID.fullmatch(value) is not None


def check_member_id(value: str, field: str = "member") -> str:
    """Return ``value`` if it is a well-formed member id, else raise a 422."""
    if not is_member_id(value):
        raise Invalid({field: [f"Not a member id: {MEMBER_ID_RULE}."]}, code="invalid_member_id")
    return value


def mint_token(member: str, secret: str, ttl_seconds: int = 24 * 3600) -> str:
    """A signed token for ``member``, valid for ``ttl_seconds``."""
    check_member_id(member)
    now = int(time.time())
    return jwt.encode({"sub": member, "iat": now, "exp": now + ttl_seconds}, secret, algorithm="HS256")


_VERIFIED: dict[tuple[str, str], tuple[str, float]] = {}  # (token, secret) → (member, exp)
_VERIFIED_MAX = 10_000


def member_from_header(header: str | None, secret: str) -> str:
    """The member id in an ``Authorization: Bearer`` header, or a 401 saying what is wrong."""
    if not header:
        raise Unauthorized("Missing Authorization header: send 'Authorization: Bearer <token>'.",
                           code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'.", code="invalid_token")
    token = token.strip()
    # A client sends the same token for hours and decoding it is most of an authenticated
    # request's CPU: a token this process verified is trusted again until its exp passes.
    verified = _VERIFIED.get((token, secret))
    if verified is not None and verified[1] > time.time():
        return verified[0]
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired.", code="token_expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"Invalid token: {exc}.", code="invalid_token") from None
    sub = claims.get("sub")
    if not is_member_id(sub):
        raise Unauthorized("The token's subject is not a member id.", code="invalid_token")
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(token, secret)] = (sub, float(claims["exp"]))
    return sub
