"""Build a service's Flask app: OpenAPI (flask-smorest), problem+json errors, auth, request ids,
health, readiness and Prometheus metrics."""
from __future__ import annotations

import os
import random
import socket
import time
from typing import Callable, Iterable

import redis
import structlog
from redis.cluster import RedisCluster
from flask import Flask, Response, current_app, g, jsonify, request, url_for
from flask_smorest import Api
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from shared.auth import TokenVerifier, check_member_id
from shared.http import body, conventions, cors, docs
from shared.http import openapi
from shared.http.openapi import PROBLEM_JSON, CommonProblems, ProblemSchema
from shared.http.ratelimit import WRITE_METHODS, WriteLimits
from shared.logs import configure_logging, get_logger
from shared.problems import Invalid, Problem, Unauthorized, Unavailable
from shared.settings import Settings, check_secrets, load_settings
from shared import store_client

# Path parameters that name a member: checked once here, so every view gets a well-formed id.
MEMBER_PATH_ARGS = ("member", "member_id")

# Errors of a store that is down, restarting or loading its data: a 503, not a 500.
STORE_UNAVAILABLE = store_client.UNAVAILABLE

# Where shared.http.members keeps a service's member directory, when it has one.
MEMBER_DIRECTORY = "rapport.members"

# Endpoints reachable without a token.
PUBLIC_ENDPOINTS = {"healthz", "readyz", "metrics", "static"}

# Query parameters a bearer token might be put in. Refused, not ignored: a URL lands in access
# logs, proxies and browser histories, where a token valid for a day would be a standing key.
URL_CREDENTIALS = {"access_token", "token", "bearer", "bearer_token", "jwt", "authorization"}

# A view marked so (``joins_write_limits``) takes its write's limit hit in the pipeline of its
# first reads (``first_reads``): the hit, the writer's entry and the view's reads in one round trip.
JOINS_LIMITS = "_rapport_joins_write_limits"
PENDING_HIT = "write_limit_pending"
# Extension: checks of a write that read the writer's entry (the profile check), run by
# ``first_reads`` once the joined hit has read it, instead of before the view.
DEFERRED_WRITE_CHECKS = "rapport.deferred_write_checks"

# Extension: endpoint → a function that names the caller from something else than the bearer
# token (a short-lived ticket), or returns None to fall back to the token (``accept_credential``).
AUTHENTICATORS = "rapport.authenticators"

REQUESTS = Counter("rapport_http_requests_total", "HTTP requests", ["service", "method", "endpoint", "status"])
# ``route`` is the URL rule's template (/v1/following/<member>), never the path: one series per
# endpoint, method and status, however many members there are.
LATENCY = Histogram("rapport_http_request_seconds", "HTTP request latency",
                    ["service", "endpoint", "route", "method", "status"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
UNMATCHED = "unmatched"  # the route of a request no URL rule matched (a 404 or 405)
# A client may send any method name: the labels keep HTTP's own, the rest are one series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

log = get_logger(__name__)


def problem_response(problem: Problem) -> Response:
    response = jsonify(problem.body())
    response.status_code = problem.status
    response.mimetype = PROBLEM_JSON
    if problem.extra.get("retry_after") is not None:  # a limit that lifts: HTTP clients read the header
        response.headers["Retry-After"] = str(problem.extra["retry_after"])
    response.headers.update(getattr(problem, "headers", {}))
    return response


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "body_too_large",
               415: "unsupported_media_type", 422: "validation_failed", 429: "too_many_requests"}


def _flatten_messages(messages) -> dict[str, list[str]]:
    """webargs nests messages by location ({"json": {"field": [...]}}); clients want fields."""
    errors: dict[str, list[str]] = {}
    if not isinstance(messages, dict):
        return {"_schema": [str(messages)]}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            for name, msgs in fields.items():
                _collect(errors, str(name), msgs)
        else:
            _collect(errors, str(location), fields)
    return errors


def _collect(errors: dict[str, list[str]], name: str, msgs) -> None:
    """Nested fields (a list's items, a nested schema) name their own path: ``muted_types.0``,
    so every field maps to a list of strings, as the document promises."""
    if isinstance(msgs, dict):
        for key, inner in msgs.items():
            _collect(errors, f"{name}.{key}", inner)
    elif isinstance(msgs, list) and any(isinstance(m, dict) for m in msgs):
        for m in msgs:
            _collect(errors, name, m)
    else:
        errors.setdefault(name, []).extend(map(str, msgs if isinstance(msgs, list) else [msgs]))


class ProblemApi(Api):
    """flask-smorest's Api answering every HTTP error as RFC 9457 problem+json, and documenting
    them so: every error response of the OpenAPI document is a problem (shared/http/openapi.py)."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app=None, *, spec_kwargs=None, config_prefix=""):
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()), CommonProblems()]
        super().__init__(app, spec_kwargs=spec_kwargs, config_prefix=config_prefix)
        openapi.register_components(self.spec)
        openapi.add_headers_to_error_responses(self.spec)
        self.ma_plugin.converter.add_attribute_function(openapi.shared_and_nullable)

    def _register_responses(self):
        # flask-smorest documents its error responses as application/json; ours are problem+json.
        content_type, self.DEFAULT_RESPONSE_CONTENT_TYPE = self.DEFAULT_RESPONSE_CONTENT_TYPE, PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            self.DEFAULT_RESPONSE_CONTENT_TYPE = content_type

    # The docs pages load their assets from the service (shared/http/docs.py), never a CDN.
    def _openapi_swagger_ui(self):
        return docs.swagger_ui_page(self.spec.title, url_for(f"{self._make_doc_blueprint_name()}.openapi_json"),
                                    self.config.get("OPENAPI_SWAGGER_UI_CONFIG", {}))

    def _openapi_redoc(self):
        return docs.redoc_page(self.spec.title, url_for(f"{self._make_doc_blueprint_name()}.openapi_json"))

    def handle_http_exception(self, error: HTTPException):
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        if status == 422:
            errors = _flatten_messages(data.get("messages", {}))
            return problem_response(Invalid(errors))
        if status == 400 and "messages" in data:
            reasons = [m for msgs in _flatten_messages(data["messages"]).values() for m in msgs]
            return problem_response(Problem(" ".join(map(str, reasons)) or "Malformed request.",
                                            code="malformed_body"))
        problem = Problem(error.description, code=_HTTP_CODES.get(status, "http_error"))
        problem.status = status
        problem.title = error.name
        response = problem_response(problem)
        if status == 405 and getattr(error, "valid_methods", None):
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response


def _new_request_id() -> str:
    # Not a secret, so no os.urandom call (uuid4) per request; ``random`` is reseeded in each
    # forked worker, so two workers do not draw the same ids.
    return "%032x" % random.getrandbits(128)


def _start() -> None:
    g.started = time.perf_counter()
    g.request_id = request.headers.get("X-Request-Id") or _new_request_id()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _authenticate() -> None:
    if request.url_rule is None:  # routing failed: let the 404/405 answer
        return
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith(("api-docs.", f"{docs.BLUEPRINT}.")):
        return
    if request.query_string and URL_CREDENTIALS & {name.lower() for name in request.args}:
        raise Unauthorized("A token is never accepted in the URL: send 'Authorization: Bearer <token>'.",
                           code="token_in_url")
    authenticate = current_app.extensions[AUTHENTICATORS].get(endpoint)
    g.member = (authenticate and authenticate()) or \
        current_app.extensions["rapport.tokens"].member(request.headers.get("Authorization"))
    for name in MEMBER_PATH_ARGS:
        if request.view_args and name in request.view_args:
            check_member_id(request.view_args[name], field=name)
    if request.method in WRITE_METHODS:
        limits = current_app.extensions["rapport.write_limits"]
        if limits:
            # A service with a member replica (shared.http.members) reads the writer's entry in
            # the same script: the profile check that follows needs no round trip of its own.
            members = current_app.extensions.get(MEMBER_DIRECTORY)
            entry = members.key(g.member) if members else None
            # A Redis Cluster's pipeline runs no script: there the hit keeps its own round trip.
            if _joins_limits(endpoint, request.method) and not isinstance(service_store(), RedisCluster):
                g.setdefault(PENDING_HIT, (g.member, entry))  # taken by the view's first_reads
            else:
                g.caller_state = limits.hit(g.member, entry)
            g.rate_limit_policy = limits.policy


def joins_write_limits(view: Callable) -> Callable:
    """Mark a write view (outermost decorator) whose first store access is ``first_reads``: its
    limit hit and the writer's entry are read in that pipeline rather than a round trip before
    the view. A 429 or a 403 ``profile_required`` still comes before anything the view writes;
    a view that answers without those reads (a 422 for its body, a replayed Idempotency-Key)
    wrote nothing, and its hit and checks run after it: a refusal replaces its answer."""
    setattr(view, JOINS_LIMITS, True)
    return view


def _joins_limits(endpoint: str, method: str) -> bool:
    known = current_app.extensions.setdefault("rapport.joins_limits", {})
    joins = known.get((endpoint, method))
    if joins is None:
        view = current_app.view_functions.get(endpoint)
        view_class = getattr(view, "view_class", None)
        handler = getattr(view_class, method.lower(), None) if view_class is not None else view
        joins = known[(endpoint, method)] = bool(getattr(handler, JOINS_LIMITS, False))
    return joins


def first_reads(queue: Callable[[redis.client.Pipeline], None]) -> list:
    """The replies of the reads ``queue`` puts on a pipeline of the service's store, in one round
    trip with the write's limit hit when the view ``joins_write_limits`` (raising 429 when a
    limit refuses, then running the deferred write checks, before returning). On a Redis
    Cluster the hit was made before the view, and the reads go alone (one round trip a node)."""
    pending = g.pop(PENDING_HIT, None)
    limits = current_app.extensions["rapport.write_limits"]

    def run(by_sha: bool) -> tuple[float | None, list]:
        with service_store().pipeline(transaction=False) as pipe:
            counted_at = limits.queue_hit(pipe, *pending, by_sha=by_sha) if pending else None
            queue(pipe)
            return counted_at, pipe.execute(raise_on_error=False)

    counted_at, replies = run(by_sha=True)
    if pending and isinstance(replies[0], redis.exceptions.NoScriptError):
        counted_at, replies = run(by_sha=False)  # a store that restarted: the script's text, once
    errors = [reply for reply in replies if isinstance(reply, Exception)]
    if errors:
        raise errors[0]
    if pending is None:
        return replies
    g.caller_state = limits.settle(pending[0], replies[0], counted_at, pending[1] is not None)
    for check in current_app.extensions[DEFERRED_WRITE_CHECKS]:
        check()
    return replies[1:]


def _settle_pending_hit(response: Response) -> Response:
    """A joining view that answered without its first reads (a 422 for its body, the replay of an
    Idempotency-Key) wrote nothing: its hit counts now, and the write checks run, whose refusal
    (429, then 403 ``profile_required``) is the answer, as it would have been before the view."""
    pending = g.pop(PENDING_HIT, None)
    if pending is not None:
        try:
            g.caller_state = current_app.extensions["rapport.write_limits"].hit(*pending)
            for check in current_app.extensions[DEFERRED_WRITE_CHECKS]:
                check()
        except Problem as problem:
            return problem_response(problem)
        except STORE_UNAVAILABLE as exc:  # the view's answer stands; this write went uncounted
            log.warning("write limit not counted", error=repr(exc))
    return response


def _check_size() -> None:
    body.check_size(request, service_settings().max_body_bytes)


def _check_json() -> None:
    if request.url_rule is not None:  # routing failed: the 404/405 answers
        body.check_json(request)


def _finish(response: Response) -> Response:
    # A preflight is answered before _authenticate names the request: it keeps the caller's id too.
    response.headers["X-Request-Id"] = (getattr(g, "request_id", None) or request.headers.get("X-Request-Id")
                                        or _new_request_id())
    if getattr(g, "rate_limit_policy", None):
        response.headers.setdefault("RateLimit-Policy", g.rate_limit_policy)
    endpoint = request.endpoint or UNMATCHED
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    service = current_app.config["RAPPORT_SERVICE"]
    status = response.status_code
    method = request.method if request.method in METHODS else OTHER_METHOD
    REQUESTS.labels(service, method, endpoint, status).inc()
    started = getattr(g, "started", None)
    seconds = time.perf_counter() - started if started is not None else None
    if seconds is not None:
        LATENCY.labels(service, endpoint, route, method, status).observe(seconds)
    # One line per request, errors included (the request id is the one the client got back).
    log.info("request", request_id=response.headers["X-Request-Id"], member=getattr(g, "member", None),
             method=request.method, route=route, status=status,
             duration_ms=round(seconds * 1000, 3) if seconds is not None else None)
    structlog.contextvars.unbind_contextvars("request_id")
    return response


def _await_replicas(response: Response) -> Response:
    """A write answers 2xx only once ``store_replicas_ack`` replicas hold it (Redis ``WAIT``), so an
    acknowledged write survives the loss of its primary; else 503 ``store_not_replicated`` (the
    write is stored on the primary: a retry with the same Idempotency-Key does not repeat it)."""
    settings = service_settings()
    if settings.store_replicas_ack <= 0 or request.method not in WRITE_METHODS \
            or not 200 <= response.status_code < 300:
        return response
    try:
        store_client.wait_replicated(service_store(), settings.store_replicas_ack,
                                     settings.store_replicas_ack_timeout_ms, current_app.config["RAPPORT_SERVICE"])
    except (store_client.NotReplicated, *STORE_UNAVAILABLE) as exc:
        log.warning("write not acknowledged by a replica", error=repr(exc))
        return problem_response(Unavailable("The write is stored but no replica confirmed it in time; retry "
                                            "shortly (with the same Idempotency-Key where the request has one).",
                                            code="store_not_replicated", retry_after=1))
    return response


def _kafka_reachable(bootstrap: str, timeout: float = 0.5) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _register_health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "service": app.config["RAPPORT_SERVICE"]}

    @app.get("/readyz")
    def readyz():
        checks = {}
        try:
            service_store().ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"unreachable: {exc}"
        checks["kafka"] = "ok" if _kafka_reachable(service_settings().kafka_bootstrap) else "unreachable"
        if all(v == "ok" for v in checks.values()):
            return {"status": "ready", **checks}
        problem = Problem("Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items() if v != "ok"),
                          code="not_ready", checks=checks)
        problem.status, problem.title = 503, "Service unavailable"
        return problem_response(problem)

    @app.get("/metrics")
    def metrics():
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Under gunicorn every worker process counts its own requests (deploy/gunicorn.conf.py
            # gives them a shared directory): add them all up, whichever worker answers.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def _document_health(app: Flask, api: ProblemApi) -> None:
    """The public endpoints beside /v1 (no token), in the document like the others."""
    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    docs_ = {
        "healthz": ("getHealth", "The process is up.", {"200": {"description": "Up", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["ok"]}, "service": {"type": "string"}},
                "required": ["status", "service"]}}}}}),
        "readyz": ("getReadiness", "The service's Redis store and Kafka are reachable.", {
            "200": {"description": "Ready", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"status": {"type": "string", "enum": ["ready"]},
                                                 "redis": {"type": "string"}, "kafka": {"type": "string"}},
                "required": ["status", "redis", "kafka"]}}}},
            "503": "SERVICE_UNAVAILABLE"}),
        "metrics": ("getMetrics", "Prometheus metrics, in the text exposition format.",
                    {"200": {"description": "Metrics", **text}}),
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint in docs_:
            operation_id, summary, responses = docs_[rule.endpoint]
            api.spec.path(rule=rule, operations={"get": {
                "operationId": operation_id, "summary": summary, "tags": ["operations"], "security": [],
                "responses": responses}})


def create_service_app(service: str, blueprints: Iterable, *, settings: Settings | None = None,
                       test_config: dict | None = None, description: str = "") -> Flask:
    """The common skeleton of every service's app factory.

    ``settings`` default to the environment's; ``test_config`` is merged into ``app.config``.
    """
    settings = settings or load_settings()
    configure_logging(service, settings.log_level)
    check_secrets(settings)  # raises: a service must not run with the published secret
    app = Flask(f"rapport.{service}")
    app.config.from_mapping(
        RAPPORT_SERVICE=service,
        RAPPORT_SETTINGS=settings,
        API_TITLE=f"Rapport {service}",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # Served by the service itself (shared/http/docs.py); flask-smorest only needs them set.
        OPENAPI_SWAGGER_UI_URL="/docs/assets/swagger-ui/",
        OPENAPI_REDOC_PATH="/redoc",
        OPENAPI_REDOC_URL="/docs/assets/redoc/redoc.standalone.js",
        API_SPEC_OPTIONS={
            "info": {"description": description or f"Rapport {service} service."},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                              "bearerFormat": "JWT"}}},
            "security": [{"bearerAuth": []}],
            "servers": [
                {"url": settings.base_urls.get(service, f"http://localhost:{settings.ports.get(service, 80)}"),
                 "description": "The service itself"},
                {"url": f"{settings.gateway_url}/{service}", "description": "Through the gateway"},
            ],
        },
    )
    app.json.sort_keys = False
    # Werkzeug stops reading a body (a chunked one too) at this size: a 413, never a whole 100 MB read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    if test_config:
        app.config.from_mapping(test_config)
    app.extensions["rapport.store"] = store_client.connect(settings.store_url(service))
    app.extensions["rapport.tokens"] = TokenVerifier.from_settings(settings)
    app.extensions[AUTHENTICATORS] = {}
    app.extensions[DEFERRED_WRITE_CHECKS] = []
    app.extensions["rapport.write_limits"] = WriteLimits(settings.store_url(service), settings.write_rate_limits,
                                                         settings.namespace, service, settings.shards)
    # Behind the gateway (one proxy: nginx) the client's address, scheme and the path prefix it
    # used (/connections) come in X-Forwarded-*; URLs the service builds carry that prefix.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_prefix=1)
    app.register_blueprint(docs.assets_blueprint())
    api = ProblemApi(app)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    app.extensions["rapport.api"] = api
    app.before_request(_start)
    app.before_request(_check_size)
    app.before_request(_authenticate)
    app.before_request(_check_json)
    app.after_request(_finish)
    app.after_request(_settle_pending_hit)
    app.after_request(conventions.add_link)
    app.after_request(_await_replicas)  # after_request runs last-registered first: before the others
    cors.install(app, settings.cors_origins)
    app.register_error_handler(Problem, problem_response)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        if isinstance(error, STORE_UNAVAILABLE):
            # Not the client's fault and not a bug: the store is restarting or unreachable.
            # Nothing was written (a transaction that fails does not half-apply); retry soon.
            log.warning("store unavailable", error=repr(error))
            return problem_response(Unavailable("The service's store is unavailable for a moment; retry shortly.",
                                                code="store_unavailable", retry_after=1))
        log.exception("unhandled error", error=repr(error))
        problem = Problem("An unexpected error occurred; it has been logged.", code="internal_error")
        problem.status, problem.title = 500, "Internal server error"
        return problem_response(problem)

    _register_health(app)
    _document_health(app, api)
    return app


def accept_credential(app: Flask, endpoint: str, authenticate) -> None:
    """Let ``endpoint`` name its caller with ``authenticate()`` (the member, or None to require the
    bearer token as everywhere else). Only that endpoint: what it accepts opens nothing else."""
    app.extensions[AUTHENTICATORS][endpoint] = authenticate


def service_settings() -> Settings:
    return current_app.config["RAPPORT_SETTINGS"]


def service_store() -> redis.Redis:
    """The current service's Redis store (its system of record)."""
    return current_app.extensions["rapport.store"]


def caller() -> str:
    """The authenticated member making the request."""
    return g.member
