"""docker-compose.yml is a valid Compose file and runs what the local runner runs."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from shared.settings import COMPOSE_JWT_SECRET, SERVICES, load_settings
from shared.stack import gateway
from shared.stack.processes import PROCESSES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def gateway_routes() -> dict[str, str]:
    """``{path prefix: location block body}`` of the gateway's routes (compose's and the local stack's)."""
    text = (ROOT / "deploy" / "nginx" / "routes.conf").read_text()
    return dict(re.findall(r"location\s+(/\w+/)\s*\{([^}]*)\}", text))


@pytest.fixture(scope="module")
def compose_spec() -> jsonschema.Draft7Validator:
    """The official Compose Specification schema.

    A verbatim copy of compose-spec/compose-spec's schema/compose-spec.json at commit
    00655e2222608fa6eaecdf12ac5195889ca2244a.
    """
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    # Its "$schema" URL is not one jsonschema knows, but the schema is draft-07.
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_compose_file_follows_the_compose_specification(compose, compose_spec):
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in compose_spec.iter_errors(compose)]
    assert errors == []


def test_the_specification_check_does_catch_a_mistake(compose_spec):
    assert not compose_spec.is_valid({"services": {"api": {"image": "x", "healthcheck": {"test": 1}}}})
    assert not compose_spec.is_valid({"services": {"api": {"image": "x", "comand": ["typo"]}}})


def test_every_local_process_runs_the_same_command_in_compose(compose):
    for process in PROCESSES:
        assert process.name in compose["services"], f"no compose service {process.name}"
        assert compose["services"][process.name]["command"] == list(process.argv), process.name


def test_every_api_listens_where_its_healthcheck_and_the_gateway_look(compose):
    for process in (p for p in PROCESSES if p.kind == "api"):
        service = compose["services"][process.name]
        test = " ".join(service["healthcheck"]["test"])
        assert "http://127.0.0.1:8000/healthz" in test, process.name
    assert "RAPPORT_BIND=0.0.0.0:8000" in (ROOT / "deploy" / "Dockerfile").read_text()


def test_each_service_reaches_only_its_own_store(compose):
    for process in PROCESSES:
        env = compose["services"][process.name]["environment"]
        store_urls = {k: v for k, v in env.items() if k.endswith("_STORE_URL")}
        assert store_urls == {f"RAPPORT_{process.service.upper()}_STORE_URL":
                              f"redis://{process.service}-store:6379/0"}, process.name
        assert env["RAPPORT_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_the_stores_persist_and_the_timeline_cache_does_not(compose):
    for service in SERVICES:
        assert compose["services"][f"{service}-store"]["volumes"][0].startswith("./deploy/redis/store.conf:")
    assert compose["services"]["timeline-cache"]["volumes"][0].startswith("./deploy/redis/cache.conf:")
    store = (ROOT / "deploy" / "redis" / "store.conf").read_text()
    cache = (ROOT / "deploy" / "redis" / "cache.conf").read_text()
    assert re.search(r"^appendonly yes$", store, re.M) and re.search(r"^appendonly no$", cache, re.M)
    assert re.search(r'^save ""$', cache, re.M)


def test_the_gateway_routes_every_service_to_its_api_without_the_prefix(compose, gateway_routes):
    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for service in SERVICES:
        body = gateway_routes.get(f"/{service}/")
        assert body is not None, f"gateway has no route for /{service}/"
        assert f"rewrite ^/{service}(/.*)$ $1 break;" in body, service
        assert f"proxy_pass http://$rapport_{service}_api;" in body, service
        assert f"set $rapport_{service}_api {service}-api:8000;" in nginx_conf, service
        assert compose["services"]["gateway"]["depends_on"][f"{service}-api"]["condition"] == "service_healthy"


def test_the_compose_gateway_resolves_the_apis_again_through_docker_s_dns(gateway_routes):
    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    # A name in an upstream block, or a proxy_pass without a variable, is resolved once at start.
    assert re.search(r"^\s*resolver 127\.0\.0\.11 valid=\d+s ipv6=off;$", nginx_conf, re.MULTILINE)
    assert not re.search(r"^\s*upstream\b", nginx_conf, re.MULTILINE)
    for prefix, body in gateway_routes.items():
        assert re.findall(r"proxy_pass\s+([^;]+);", body) == [f"http://$rapport_{prefix.strip('/')}_api"], prefix


def test_the_local_gateway_runs_the_same_rules_and_routes_as_compose(compose, tmp_path):
    settings = load_settings({}, run_dir=tmp_path, gateway_port=18080,
                             ports={"connections": 18001, "follows": 18002, "feed": 18003, "notifications": 18004,
                                    "messaging": 18006})
    local = gateway.render(settings)
    nginx_conf = (ROOT / "deploy" / "nginx.conf").read_text()
    mounts = compose["services"]["gateway"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in mounts and "./deploy/nginx:/etc/nginx/rapport:ro" in mounts
    for name in ("proxy.conf", "routes.conf"):
        assert f"include /etc/nginx/rapport/{name};" in nginx_conf
        assert f"include {ROOT / 'deploy' / 'nginx' / name};" in local
    for service in SERVICES:
        assert f"set $rapport_{service}_api 127.0.0.1:{settings.ports[service]};" in local
    assert "listen 127.0.0.1:18080;" in local and "listen 8080;" in nginx_conf
    assert compose["services"]["gateway"]["ports"] == ["8080:8080"]


def test_the_compose_gateway_s_config_is_one_nginx_accepts(tmp_path):
    # Debian's nginx (the local stack's) checks a copy whose includes point into the repository
    # and whose temporary files go to tmp_path; the API names need no resolving to be checked.
    text = (ROOT / "deploy" / "nginx.conf").read_text().replace("/etc/nginx/rapport/", f"{ROOT / 'deploy' / 'nginx'}/")
    temp = "".join(f"    {kind}_temp_path {tmp_path / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = text.replace("http {\n", "http {\n" + temp, 1)
    (tmp_path / "nginx.conf").write_text(text)

    checked = subprocess.run([gateway.nginx_binary(), "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path),
                              "-e", "stderr", "-g", f"pid {tmp_path / 'nginx.pid'};"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30, check=False)

    assert checked.returncode == 0, checked.stdout
    assert "syntax is ok" in checked.stdout


def test_every_image_can_come_from_a_mirror(compose):
    images = {name: service["image"] for name, service in compose["services"].items()}
    for name, image in images.items():
        assert re.fullmatch(r"\$\{RAPPORT_(\w+_)?IMAGE:-[^}]+\}", image), f"{name}: {image}"
    build = compose["x-app"]["build"]
    assert build["args"] == {"PYTHON_IMAGE": "${RAPPORT_PYTHON_IMAGE:-python:3.11-slim}"}
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.findall(r"^FROM (.+)$", dockerfile, re.MULTILINE) == ["${PYTHON_IMAGE}"]


def test_the_image_s_build_context_leaves_out_the_virtualenv_the_run_dir_and_git():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".env", ".venv", ".run", "**/__pycache__", "bench/results", ".pytest_cache"} <= ignored
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE)
    assert not [path for path in copied if path.rstrip("/") in ignored]


def test_compose_refuses_to_start_without_a_jwt_secret_of_the_operator_s(compose):
    secret = compose["x-env"]["RAPPORT_JWT_SECRET"]
    assert re.fullmatch(r"\$\{RAPPORT_JWT_SECRET:\?[^}]+\}", secret)  # compose stops, saying why
    assert COMPOSE_JWT_SECRET not in (ROOT / "docker-compose.yml").read_text()


def test_the_readme_says_which_docker_runs_the_compose_file(compose):
    readme = (ROOT / "README.md").read_text()
    uses_start_interval = any("start_interval" in (s.get("healthcheck") or {}) for s in compose["services"].values())
    assert uses_start_interval and "Docker Engine 25" in readme and "Compose 2.20" in readme


def test_each_worker_s_metrics_port_is_the_one_the_compose_file_names():
    ports = sorted(load_settings({}).worker_metrics_ports.values())
    assert f"{ports[0]}-{ports[-1]}" in (ROOT / "docker-compose.yml").read_text()


def test_the_gateway_refuses_bodies_the_apis_would(tmp_path):
    default = load_settings({}).max_body_bytes
    assert default == 1024 * 1024
    assert re.search(r"^\s*client_max_body_size 1m;$", (ROOT / "deploy" / "nginx.conf").read_text(), re.M)
    assert f"client_max_body_size {default};" in gateway.render(load_settings({}, run_dir=tmp_path))


def test_every_error_nginx_makes_itself_is_a_problem():
    routes = (ROOT / "deploy" / "nginx" / "routes.conf").read_text()
    pages = dict(re.findall(r"^error_page ([\d =]+) (/_problems/\w+);$", routes, re.M))
    assert set(pages) == {"400", "404", "408", "413", "414", "494 =431", "500", "502", "503", "504"}
    for uri in pages.values():
        block = re.search(r"location = %s \{([^}]*)\}" % re.escape(uri), routes).group(1)
        assert "internal;" in block and "default_type application/problem+json;" in block, uri


def test_the_gateway_streams_notifications_unbuffered(gateway_routes):
    assert "proxy_buffering off;" in gateway_routes["/notifications/"]


def test_the_gateway_streams_conversations_unbuffered(gateway_routes):
    assert "proxy_buffering off;" in gateway_routes["/messaging/"]


def test_apis_and_workers_start_after_kafka_and_the_topics(compose):
    for process in PROCESSES:
        depends = compose["services"][process.name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy"
        assert depends["topics"]["condition"] == "service_completed_successfully"
        assert depends[f"{process.service}-store"]["condition"] == "service_healthy"
    assert compose["services"]["topics"]["command"] == ["rapport", "topics"]
