"""Settings that depend on each other."""

from __future__ import annotations

import pytest

from krypton.config import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KRYPTON_PUBLIC_URL", "KRYPTON_HOST", "KRYPTON_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("host", "port", "url"), [
    ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
    ("10.0.0.5", 9000, "http://10.0.0.5:9000"),
    ("0.0.0.0", 8080, "http://127.0.0.1:8080"),  # all interfaces: this machine's own address
    ("::1", 8001, "http://[::1]:8001"),
])
def test_the_public_url_defaults_to_where_the_server_listens(host: str, port: int, url: str) -> None:
    assert Settings(host=host, port=port).public_url == url


def test_a_public_url_that_is_set_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRYPTON_PORT", "9100")
    monkeypatch.setenv("KRYPTON_PUBLIC_URL", "https://pay.example.com")
    assert Settings().public_url == "https://pay.example.com"
    monkeypatch.delenv("KRYPTON_PUBLIC_URL")
    assert Settings().public_url == "http://127.0.0.1:9100"
