"""The packaging in deploy/ and the Dockerfile: nothing here can run Docker, Kubernetes or
systemd services, so each file is checked for what can be checked without them: it parses,
it runs commands Krypton has, it sets only settings Krypton reads, its images are pinned, its
ports and health checks are the ones Krypton serves; systemd's own verifier reads the units."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from krypton.cli import app as cli
from krypton.config import Settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "krypton"
KRYPTON = str(Path(sys.executable).parent / "krypton")
SETTING = re.compile(r"\bKRYPTON_[A-Z0-9_]+\b")
# Read by the signer alone, never by Settings: no key material may sit in the settings of a
# process (adapters/signer/keystore.py).
NOT_SETTINGS = frozenset({"KRYPTON_SIGNER_PASSPHRASE_FILE", "KRYPTON_SIGNER_PASSPHRASE"})


def settings_names() -> set[str]:
    return {f"KRYPTON_{name.upper()}" for name in Settings.model_fields}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def krypton_commands() -> list[list[str]]:
    """Every Krypton command line the packaging runs, from each file that runs one."""
    found = [service["command"] for service in compose()["services"].values()
             if service.get("image", "").startswith("krypton:")]
    for unit in DEPLOY.glob("systemd/*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                found.append(line.split()[1:])
    for template in CHART.glob("templates/*.yaml"):
        found += [re.findall(r"[\w-]+", args)
                  for args in re.findall(r"^\s+args: \[(.*)\]$", template.read_text(), re.M)]
    return found


def test_every_krypton_variable_is_a_setting() -> None:
    files = [DEPLOY / "compose.yaml", DEPLOY / "krypton.env.example", CHART / "values.yaml",
             ROOT / "Dockerfile", *DEPLOY.glob("systemd/*"), *CHART.glob("templates/*")]
    used = {name: path.name for path in files for name in SETTING.findall(path.read_text())}
    unknown = {name: where for name, where in used.items()
               if name not in settings_names() | NOT_SETTINGS}
    assert not unknown, f"not Krypton settings: {unknown}"
    assert len(used) > 10  # the scan saw the files


@pytest.mark.parametrize("command", krypton_commands(), ids=" ".join)
def test_every_command_the_packaging_runs_exists(command: list[str]) -> None:
    words = [w for w in command if not w.startswith("-")][:2]
    result = CliRunner().invoke(cli, [*words, "--help"])
    assert result.exit_code == 0, result.output
    for option in (w for w in command if w.startswith("--")):
        assert option in result.output, f"{' '.join(words)} has no option {option}"


def test_compose_topology() -> None:
    services = compose()["services"]
    assert {"api", "worker", "signer", "postgres", "redis", "nats", "prometheus",
            "grafana"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: pin the image's tag ({image})"
        if image.startswith("krypton:"):
            assert service["build"]["dockerfile"] == "Dockerfile"
            assert (DEPLOY / service["build"]["context"] / "Dockerfile").is_file()
    # The database URL points at the compose service and the port PostgreSQL listens on.
    env = services["api"]["environment"]
    assert "@postgres:5432/" in env["KRYPTON_DATABASE_URL"]
    assert env["KRYPTON_REDIS_URL"].startswith("redis://redis:6379")
    assert env["KRYPTON_NATS_URL"] == "nats://nats:4222"
    assert services["api"]["ports"] == [f"{Settings().port}:{Settings().port}"]
    # Prometheus scrapes each worker where it serves its series.
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    ports = {job["job_name"]: job["dns_sd_configs"][0]["port"] for job in scrape["scrape_configs"]}
    assert ports["krypton-worker"] == int(services["worker"]["environment"]["KRYPTON_METRICS_PORT"])
    assert ports["krypton-api"] == Settings().port
    # The signer's socket is the only thing it shares with the others.
    assert services["signer"]["volumes"][0].startswith("signer-socket:")
    for mount in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        assert (DEPLOY / mount.split(":")[0]).exists(), mount


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 3  # multi-stage: assets, python, runtime
    assert "uv sync --frozen --no-dev" in text  # the locked dependencies, nothing else
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^EXPOSE 8000$", text, re.M) and "KRYPTON_PORT=8000" in text
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1]
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"COPY {path}: no such file"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "data" in ignored  # no local database or venv in the image


async def test_health_paths_are_served(api: httpx.AsyncClient) -> None:
    """What the image's HEALTHCHECK and the chart's probes ask for answers 200."""
    probes = re.findall(r"path: (/\w+)", (CHART / "templates" / "api.yaml").read_text())
    docker = re.findall(r"127\.0\.0\.1:8000(/\w+)", (ROOT / "Dockerfile").read_text())
    assert probes and docker
    for path in {*probes, *docker}:
        assert (await api.get(path)).status_code == 200, path


def test_helm_chart_values_exist() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "krypton"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for template in CHART.glob("templates/*"):
        for ref in re.findall(r"\.Values\.([\w.]+)", template.read_text()):
            node: Any = values
            for key in ref.split("."):
                assert isinstance(node, dict) and key in node, f"{template.name}: .Values.{ref}"
                node = node[key]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not here")
def test_systemd_units_verify(tmp_path: Path) -> None:
    # systemd checks that ExecStart exists: point it at this checkout's krypton.
    units = []
    for unit in DEPLOY.glob("systemd/*.service"):
        name = unit.name.replace("@.", "@1.")
        (tmp_path / name).write_text(unit.read_text().replace("/opt/krypton/.venv/bin/krypton", KRYPTON))
        units.append(str(tmp_path / name))
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
