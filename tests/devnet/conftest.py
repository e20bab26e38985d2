"""The devnet driven in-process: a manual clock, a fake sleep (nothing ever waits), and an
httpx client on the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from krypton.devnet import Devnet, create_devnet_app
from tests.support.clock import ManualClock


class FakeSleep:
    """Records what the app would have waited, and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def devnet(clock: ManualClock) -> Devnet:
    return Devnet(clock.now, seed="tests")


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def client(devnet: Devnet, sleep: FakeSleep) -> AsyncIterator[httpx.AsyncClient]:
    app = create_devnet_app(devnet, sleep=sleep)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://devnet") as http:
        yield http
