"""A real `krypton serve` (devnet, SQLite, fast blocks) and Debian's Chromium through
Playwright, for the pages people see."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import free_port, in_ci

KRYPTON = str(Path(sys.executable).parent / "krypton")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[3] / "artifacts"


@dataclass
class Served:
    url: str
    key: str
    data_dir: Path
    env: dict[str, str]  # the server's settings, for CLI commands run beside it

    def invoice(self, **fields: Any) -> dict[str, Any]:
        body = {"amount": "9.99", "currency": "USD", "description": "Two coffees", **fields}
        answer = httpx.post(f"{self.url}/api/v1/invoices", json=body,
                            headers={"Authorization": f"Bearer {self.key}"}, timeout=10)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created


def _wait(done: Any, what: str) -> None:
    for _ in range(600):  # the limit only stops a hung test
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serving(data_dir: Path, **settings: str) -> Iterator[Served]:
    """`krypton serve` on the devnet (fast blocks) over `data_dir`, with a merchant made by the
    CLI first; more KRYPTON_* `settings` as given."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KRYPTON_")},
           "KRYPTON_DATA_DIR": str(data_dir), "KRYPTON_PORT": str(port),
           "KRYPTON_DEVNET_TON_BLOCK_SECONDS": "0.2", "KRYPTON_DEVNET_TRON_BLOCK_SECONDS": "0.3",
           "KRYPTON_WATCH_INTERVAL_SECONDS": "0.2", "KRYPTON_LOG_LEVEL": "warning",
           "KRYPTON_RATE_LIMIT_PUBLIC": "100000/minute", **settings}
    made = subprocess.run([KRYPTON, "merchant", "create", "--name", "Cafe", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    key = json.loads(made.stdout.strip().splitlines()[-1])["api_key"]
    log = (data_dir / "server.log").open("wb")
    server = subprocess.Popen([KRYPTON, "serve"], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _answers(f"{url}/livez") or server.poll() is not None, "the server to answer")
        assert server.poll() is None, (data_dir / "server.log").read_text()
        yield Served(url, key, data_dir, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("pages")) as instance:
        yield instance


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if in_ci():
            raise AssertionError("chromium is not installed; run scripts/install-system-deps.sh")
        pytest.skip("chromium is not installed here; run scripts/install-system-deps.sh")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Any, name: str) -> None:
    """Saved under artifacts/ (ignored by git) for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
