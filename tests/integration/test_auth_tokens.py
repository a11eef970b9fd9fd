"""Which tokens the services accept: the development secret only locally, lifetimes capped, and an
identity provider's RS256/ES256 tokens checked against its JWKS (served here on 127.0.0.1)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.follows.app import create_app
from shared.settings import COMPOSE_JWT_SECRET, DEVELOPMENT_JWT_SECRET, REPO_ROOT, InsecureSettings, load_settings

ISSUER, AUDIENCE = "https://id.example.test/", "rapport"


def test_a_service_refuses_to_start_with_the_development_secret_outside_the_local_stack(settings):
    with pytest.raises(InsecureSettings):
        create_app({"TESTING": True}, settings=settings.replace(env=""))
    with pytest.raises(InsecureSettings):
        create_app({"TESTING": True}, settings=settings.replace(env="production"))


def test_a_service_refuses_to_start_with_compose_s_former_default_secret_outside_the_local_stack(settings):
    with pytest.raises(InsecureSettings):
        create_app({"TESTING": True}, settings=settings.replace(env="", jwt_secret=COMPOSE_JWT_SECRET))
    assert create_app({"TESTING": True}, settings=settings.replace(env="local", jwt_secret=COMPOSE_JWT_SECRET))


def test_a_service_starts_with_a_secret_of_its_own_or_in_the_local_stack(settings):
    assert create_app({"TESTING": True}, settings=settings.replace(env="", jwt_secret="s" * 40))
    assert create_app({"TESTING": True}, settings=settings.replace(env="local"))
    assert settings.jwt_secret == DEVELOPMENT_JWT_SECRET and settings.env == "local"


def test_a_worker_refuses_to_start_with_the_development_secret_outside_the_local_stack(settings):
    env = {k: v for k, v in os.environ.items() if k != "RAPPORT_ENV"}
    env.update({**settings.as_env(), "RAPPORT_ENV": "", "RAPPORT_FOLLOWS_WORKER_METRICS_PORT": "0"})

    worker = subprocess.run([sys.executable, "-m", "shared.cli", "worker", "follows"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)

    assert worker.returncode == 2
    assert "development secret" in worker.stdout + worker.stderr


def test_a_token_valid_for_longer_than_the_cap_is_refused(apps, settings, unique):
    now = int(time.time())
    forever = jwt.encode({"sub": unique("ada"), "iat": now, "exp": 253402300799}, settings.jwt_secret,
                         algorithm="HS256")  # 9999-12-31
    backdated = jwt.encode({"sub": unique("ada"), "iat": now - 10 * 24 * 3600, "exp": now + 3600},
                           settings.jwt_secret, algorithm="HS256")

    for token in (forever, backdated):
        answer = apps("follows").get("/v1/settings", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
        assert answer.mimetype == "application/problem+json"
        assert answer.json["code"] == "token_lifetime_too_long"


def test_a_token_within_the_cap_is_accepted(apps, settings, unique):
    now = int(time.time())
    token = jwt.encode({"sub": unique("ada"), "iat": now, "exp": now + 24 * 3600}, settings.jwt_secret,
                       algorithm="HS256")

    assert apps("follows").get("/v1/settings", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- an identity provider ------------------------------------------------------------------


class Provider:
    """An identity provider's keys: an RSA and an EC key, published as a JWKS over HTTP."""

    def __init__(self):
        self.keys = {"rsa-1": (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
                     "ec-1": (ec.generate_private_key(ec.SECP256R1()), "ES256")}
        jwks = {"keys": [{**json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key())),
                          "kid": kid, "alg": alg, "use": "sig"} for kid, (key, alg) in self.keys.items()]}
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, sub: str, kid: str = "rsa-1", key=None, **claims) -> str:
        private, alg = self.keys[kid]
        now = int(time.time())
        payload = {"sub": sub, "iat": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE, **claims}
        return jwt.encode(payload, key or private, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def provider():
    p = Provider()
    yield p
    p.server.shutdown()


@pytest.fixture(scope="module")
def idp_app(settings, provider):
    return create_app({"TESTING": True}, settings=settings.replace(
        jwks_url=provider.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)).test_client()


def who(app, token):
    answer = app.get("/v1/settings", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, (answer.json or {}).get("code"), answer.mimetype


def test_rs256_and_es256_tokens_of_the_identity_provider_are_accepted(idp_app, provider, unique):
    assert who(idp_app, provider.token(unique("ada"), kid="rsa-1"))[0] == 200
    assert who(idp_app, provider.token(unique("ada"), kid="ec-1"))[0] == 200


def test_a_token_of_another_issuer_or_audience_is_refused(idp_app, provider, unique):
    assert who(idp_app, provider.token(unique("ada"), iss="https://evil.example.test/")) == \
        (401, "invalid_token", "application/problem+json")
    assert who(idp_app, provider.token(unique("ada"), aud="someone-else")) == \
        (401, "invalid_token", "application/problem+json")


def test_a_token_signed_by_a_key_the_provider_did_not_publish_is_refused(idp_app, provider, unique):
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    assert who(idp_app, provider.token(unique("ada"), kid="rsa-1", key=impostor)) == \
        (401, "invalid_token", "application/problem+json")


def test_with_an_identity_provider_the_shared_secret_is_not_accepted(idp_app, settings, unique):
    now = int(time.time())
    token = jwt.encode({"sub": unique("ada"), "iat": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE},
                       settings.jwt_secret, algorithm="HS256")

    assert who(idp_app, token) == (401, "invalid_token", "application/problem+json")


def test_an_identity_provider_token_valid_for_longer_than_the_cap_is_refused(idp_app, provider, unique):
    assert who(idp_app, provider.token(unique("ada"), exp=253402300799)) == \
        (401, "token_lifetime_too_long", "application/problem+json")


def test_settings_name_the_identity_provider():
    loaded = load_settings({"RAPPORT_JWKS_URL": "http://127.0.0.1:1/jwks", "RAPPORT_JWT_ISSUER": ISSUER,
                            "RAPPORT_JWT_AUDIENCE": AUDIENCE, "RAPPORT_ENV": "local"})

    assert (loaded.jwks_url, loaded.jwt_issuer, loaded.jwt_audience) == ("http://127.0.0.1:1/jwks", ISSUER, AUDIENCE)


def test_an_identity_provider_that_cannot_be_reached_is_a_503_not_a_401(settings, provider, unique):
    unreachable = create_app({"TESTING": True}, settings=settings.replace(
        jwks_url="http://127.0.0.1:1/jwks.json", jwt_issuer=ISSUER, jwt_audience=AUDIENCE)).test_client()

    answer = unreachable.get("/v1/settings", headers={"Authorization": f"Bearer {provider.token(unique('ada'))}"})

    assert answer.status_code == 503
    assert answer.mimetype == "application/problem+json"
    assert answer.json["code"] == "token_keys_unavailable"
