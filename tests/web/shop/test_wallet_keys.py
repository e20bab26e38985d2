"""adapters/tonconnect/keys.py: a wallet's key from get_public_key, in TON Center v3's shape
(as the devnet answers it for wallet contracts), and None for anything else."""

from __future__ import annotations

from typing import Any, cast

import pytest

from krypton.adapters.chains.provider import ServerError
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.tonconnect.keys import chain_public_key

WALLET = TonAddress(0, bytes(32))
KEY = bytes(range(1, 33))


class Answers:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    async def run_get_method(self, account: TonAddress, method: str) -> Any:
        self.asked.append((account.raw, method))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_the_key_is_read_from_the_get_method() -> None:
    number = {"type": "num", "value": hex(int.from_bytes(KEY))}
    client = Answers({"gas_used": 1, "exit_code": 0, "stack": [number]})
    assert await chain_public_key(cast(TonCenterClient, client), WALLET) == KEY
    assert client.asked == [(WALLET.raw, "get_public_key")]


@pytest.mark.parametrize("answer", [
    {"gas_used": 0, "exit_code": 11, "stack": []},  # no such method
    {"gas_used": 0, "exit_code": 0, "stack": []},
    {"gas_used": 0, "exit_code": 0, "stack": [{"type": "num", "value": hex(1 << 256)}]},
    {"gas_used": 0, "exit_code": 0, "stack": [{"type": "cell", "value": "te6c"}]},
    ServerError("TON Center answered 503"),
])
async def test_anything_but_a_key_is_none(answer: Any) -> None:
    assert await chain_public_key(cast(TonCenterClient, Answers(answer)), WALLET) is None
