"""The alert rules and the Grafana dashboard in deploy/: promtool checks and unit-tests the
rules on synthetic series (alerts_test.yml), and every series the rules and the dashboard
query is one Krypton exports, so a renamed metric cannot leave an alert silently empty."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from tests.support.servers import in_ci

ROOT = Path(__file__).parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "krypton.json"
# Series Prometheus makes itself, not Krypton.
PROMETHEUS_OWN = frozenset({"up"})
SERIES = re.compile(r"\b(krypton_[a-z0-9_]+|up)\b")

# Skipped only outside CI: CI installs it, and there a missing promtool fails the tests.
promtool = pytest.mark.skipif(shutil.which("promtool") is None and not in_ci(),
                              reason="promtool comes with Debian's prometheus package "
                                     "(scripts/install-system-deps.sh installs it)")


def exported() -> set[str]:
    """The series names Krypton's registry can expose."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum"),
                    "summary": ("_count", "_sum"), "gauge": ("",), "info": ("_info",)}
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def queried() -> dict[str, str]:
    """Each series a rule or a panel queries, with where."""
    found: dict[str, str] = {}
    for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            for name in SERIES.findall(rule["expr"]):
                found[name] = f"alert {rule['alert']}"
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            for name in SERIES.findall(target["expr"]):
                found[name] = f"panel {panel['title']!r}"
    return found


@promtool
def test_rules_and_config_are_valid() -> None:
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        result = subprocess.run(["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@promtool
def test_alerts_fire_on_synthetic_series() -> None:
    result = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_test() -> None:
    rules = {rule["alert"] for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
             for rule in group["rules"]}
    cases = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in cases for case in test.get("alert_rule_test", [])}
    # Informational alerts on plain thresholds need no synthetic series of their own.
    untested = rules - tested - {"KryptonUnmatchedTransfersRising", "KryptonWebhooksFailing",
                                 "KryptonReadHorizonStuck", "KryptonProviderErrors",
                                 "KryptonRateLimiting"}
    assert not untested


async def test_every_queried_series_is_exported(api: httpx.AsyncClient) -> None:
    # The app is built (every module that defines a metric is imported) and has answered.
    assert (await api.get("/metrics")).status_code == 200
    missing = {name: where for name, where in queried().items()
               if name not in exported() | PROMETHEUS_OWN}
    assert not missing, f"queried but not exported by Krypton: {missing}"


def test_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "krypton" and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "prometheus", panel["title"]
