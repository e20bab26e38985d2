"""The devnet's fake Bot API served over HTTP, and the real Bot API client pointed at it: the
fixtures of the tests that talk to Telegram. A module's BOT_TOKEN (or the default) is the
token both sides use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from krypton.adapters.telegram.bot_api import BotApi
from krypton.devnet.telegram_api import FakeBotApi
from tests.support.clock import ManualClock
from tests.web.live_server import LiveServer

BOT_TOKEN = "123456789:AAE-devnet-secret-token-value_0123456"


def token_of(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.module, "BOT_TOKEN", BOT_TOKEN))


@pytest.fixture
def fake(request: pytest.FixtureRequest, clock: ManualClock) -> FakeBotApi:
    return FakeBotApi(token_of(request), now=clock.now)


@pytest.fixture
def fake_url(fake: FakeBotApi) -> Iterator[str]:
    with LiveServer(fake.app()) as server:
        yield server.url


@pytest.fixture
async def bot(request: pytest.FixtureRequest, fake_url: str) -> AsyncIterator[BotApi]:
    client = BotApi(token_of(request), fake_url)
    yield client
    await client.close()
