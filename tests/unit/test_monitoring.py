"""What an operator's monitoring reads: the alerting rules are valid Prometheus rules that fire on
the series that should raise them, the compose stack's Prometheus scrapes every API and worker,
and the dashboard and the alerts name only metrics the code declares."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from shared.settings import SERVICES, load_settings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rapport.json"
METRIC = re.compile(r"\brapport_[a-z0-9_]+")


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is missing: `apt-get install prometheus` (Debian) provides it (.ci/run installs it)")
    return subprocess.run([tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)


def test_the_alerting_rules_are_valid_prometheus_rules():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_each_alert_fires_on_the_series_that_should_raise_it_and_not_before():
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_compose_prometheus_config_is_valid_and_scrapes_every_api_and_worker():
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {target for job in config["scrape_configs"] for static in job["static_configs"]
               for target in static["targets"]}
    ports = load_settings({}).worker_metrics_ports
    assert targets == {f"{s}-api:8000" for s in SERVICES} | {f"{s}-worker:{ports[s]}" for s in SERVICES}


def declared_metrics() -> set[str]:
    """Every sample name the code's metrics can expose (a histogram's _bucket, a counter's _total...)."""
    import shared.bus.consumer  # noqa: F401 (each module declares its metrics on import)
    import shared.bus.outbox  # noqa: F401
    import shared.http.app  # noqa: F401
    import shared.live  # noqa: F401
    import shared.members  # noqa: F401

    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "gauge": ("",), "summary": ("_count", "_sum", "_created")}
    return {family.name + suffix for family in REGISTRY.collect() if family.name.startswith("rapport_")
            for suffix in suffixes.get(family.type, ("",))}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_dashboard_and_the_alerts_name_only_metrics_the_code_declares():
    declared = declared_metrics()
    assert {"rapport_consumer_lag", "rapport_outbox_depth", "rapport_http_request_seconds_bucket"} <= declared
    expressions = dashboard_expressions() + alert_expressions()
    named = {name for expr in expressions for name in METRIC.findall(expr)}
    assert named and named - declared == set()


def test_the_dashboard_reads_the_provisioned_prometheus():
    datasources = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
                                 .read_text())["datasources"]
    dashboard = json.loads(DASHBOARD.read_text())
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {d["uid"] for d in datasources}
