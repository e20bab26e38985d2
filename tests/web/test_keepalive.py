"""After a 500 the kept-alive connection stays usable (a real uvicorn server, a real socket)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from krypton.app import merchants
from krypton.bootstrap import Container, build
from krypton.config import Settings
from tests.conftest import auth
from tests.web.live_server import LiveServer
from tests.web.test_logs import crashing_app


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def test_the_connection_survives_a_500(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key_cache_seconds=0)

    async def prepare() -> tuple[Container, merchants.IssuedKey]:
        container = await build(settings)
        _, key = await merchants.create_merchant(container.deps, name="Shop")
        # The server runs its own event loop: start its pool afresh there (as `serve` does).
        await container.db.dispose()
        return container, key
    container, key = asyncio.run(prepare())
    try:
        _check_keepalive(container, key)
    finally:
        asyncio.run(container.close())


def _check_keepalive(container: Container, key: merchants.IssuedKey) -> None:
    with LiveServer(crashing_app(container)) as server, \
            httpx.Client(base_url=server.url, limits=httpx.Limits(max_connections=1)) as client:
        crashed = client.get("/crash", headers=auth(key))
        assert crashed.status_code == 500
        assert crashed.headers.get("connection", "").lower() != "close"
        # The same TCP connection (same local port) carries the next request, and it succeeds;
        # before, uvicorn closed it after the 500 and this request met a reset or a new socket.
        after = client.get("/livez")
        assert after.status_code == 200
        assert _local_port(after) == _local_port(crashed)
