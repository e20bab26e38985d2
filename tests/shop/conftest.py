"""The shop rig: the container's shop kit with in-memory suppliers and signer, the devnet
and the chain loop (SQLite and PostgreSQL, from tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from krypton.bootstrap import Container
from krypton.workers.watch import ChainWatch
from tests.shop.support import FakeSigner, FakeSupplier, ShopRig

CHEAP, DEAR = 15_000_000, 16_000_000  # nanoton a Star


@pytest.fixture
def cheap() -> FakeSupplier:
    return FakeSupplier("cheap", CHEAP)


@pytest.fixture
def dear() -> FakeSupplier:
    return FakeSupplier("dear", DEAR)


@pytest.fixture
def signer(cheap: FakeSupplier, dear: FakeSupplier) -> FakeSigner:
    return FakeSigner([cheap, dear])


@pytest.fixture
async def rig(container: Container, cheap: FakeSupplier, dear: FakeSupplier,
              signer: FakeSigner) -> AsyncIterator[ShopRig]:
    kit = container.shop()
    assert kit is not None  # on by default on the devnet
    kit = dataclasses.replace(kit, suppliers=[dear, cheap], signer=signer)
    chains = container.chains()
    yield ShopRig(container, kit, ChainWatch(container.deps, chains))
    await chains.aclose()
