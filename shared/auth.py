"""JWT bearer auth. ``sub`` is the caller's member id; ``exp`` is required and bounded.

Two kinds of token, chosen by settings:

- HS256 with the shared ``jwt_secret`` (the local stack, ``rapport token``);
- RS256/ES256 from an identity provider, when ``jwks_url`` is set: verified against the
  provider's published keys (PyJWT's ``PyJWKClient``, which caches them), with the issuer and
  audience checked when ``jwt_issuer``/``jwt_audience`` are set. The shared secret is then
  not accepted at all.
"""
from __future__ import annotations

import re
import threading
import time

import jwt

from shared.problems import Invalid, Unauthorized, Unavailable

MEMBER_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MEMBER_ID_RULE = "1-64 characters of A-Z a-z 0-9 _ . -"

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256"]

# Clock skew between an issuer and this process, allowed for in the lifetime cap only (an
# expired token stays expired).
LEEWAY_SECONDS = 30


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


class TokenVerifier:
    """Checks bearer tokens as the settings say: a shared secret, or an identity provider's JWKS."""

    def __init__(self, secret: str, max_lifetime_seconds: int, jwks_url: str = "", issuer: str = "",
                 audience: str = ""):
        self.secret = secret
        self.max_lifetime = max_lifetime_seconds
        self.issuer = issuer or None
        self.audience = audience or None
        # PyJWKClient fetches the key set once and again only for a key id it does not know.
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5) if jwks_url else None
        # A client sends the same token for hours and decoding it is most of an authenticated
        # request's CPU: a token this process verified is trusted again until its exp passes.
        self._verified: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings) -> "TokenVerifier":
        return cls(settings.jwt_secret, settings.jwt_max_lifetime_seconds, settings.jwks_url,
                   settings.jwt_issuer, settings.jwt_audience)

    def member(self, header: str | None) -> str:
        """The member id in an ``Authorization: Bearer`` header, or a 401 saying what is wrong."""
        if not header:
            raise Unauthorized("Missing Authorization header: send 'Authorization: Bearer <token>'.",
                               code="missing_token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization must be 'Bearer <token>'.", code="invalid_token")
        token = token.strip()
        verified = self._verified.get(token)
        if verified is not None and verified[1] > time.time():
            return verified[0]
        claims = self._decode(token)
        sub = claims.get("sub")
        if not is_member_id(sub):
            raise Unauthorized("The token's subject is not a member id.", code="invalid_token")
        self._check_lifetime(claims)
        with self._lock:
            if len(self._verified) >= 10_000:
                self._verified.clear()
            self._verified[token] = (sub, float(claims["exp"]))
        return sub

    def _decode(self, token: str) -> dict:
        required = ["exp", "sub"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        try:
            if self.jwks is None:
                return jwt.decode(token, self.secret, algorithms=["HS256"],
                                  options={"require": required})
            try:
                key = self.jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWKClientConnectionError:
                # The provider's keys cannot be fetched: not the client's fault.
                raise Unavailable("The identity provider's keys are unavailable; retry shortly.",
                                  code="token_keys_unavailable", retry_after=5) from None
            return jwt.decode(token, key, algorithms=ASYMMETRIC_ALGORITHMS, issuer=self.issuer,
                              audience=self.audience,
                              options={"require": required, "verify_aud": self.audience is not None})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The token has expired.", code="token_expired") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("The token was not issued by the expected issuer.", code="invalid_token") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("The token is not meant for this audience.", code="invalid_token") from None
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(f"Invalid token: {exc}.", code="invalid_token") from None

    def _check_lifetime(self, claims: dict) -> None:
        """A stolen long-lived token is a standing key: refuse one valid longer than the cap,
        counted from its ``iat`` and, as ``iat`` is the issuer's word, from now."""
        exp, now = claims["exp"], time.time()
        iat = claims.get("iat")
        if not isinstance(exp, (int, float)) or (iat is not None and not isinstance(iat, (int, float))):
            raise Unauthorized("The token's exp and iat must be numbers.", code="invalid_token")
        limit = self.max_lifetime + LEEWAY_SECONDS
        if exp - now > limit or (iat is not None and exp - iat > limit):
            raise Unauthorized(f"The token is valid for longer than {self.max_lifetime} s; ask for a shorter one.",
                               code="token_lifetime_too_long")


_SECRET_VERIFIERS: dict[tuple[str, int], TokenVerifier] = {}


def member_from_header(header: str | None, secret: str, max_lifetime_seconds: int = 24 * 3600) -> str:
    """The member id in a shared-secret ``Authorization: Bearer`` header, or a 401."""
    verifier = _SECRET_VERIFIERS.get((secret, max_lifetime_seconds))
    if verifier is None:
        verifier = _SECRET_VERIFIERS.setdefault((secret, max_lifetime_seconds),
                                                TokenVerifier(secret, max_lifetime_seconds))
    return verifier.member(header)
