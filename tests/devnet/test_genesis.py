"""A devnet's nonce: the same seed and nonce give the same chain byte for byte, another nonce
gives a chain sharing no id with it (a server boot draws one, so a restart on one database
never repeats a transaction id)."""

from __future__ import annotations

from krypton.devnet import Devnet
from tests.devnet.test_simulators import _dump, _script
from tests.support.clock import ManualClock


def _ids(devnet: Devnet) -> set[str]:
    """Every transaction hash and block id of both chains."""
    ton = {tx.hash for account in devnet.ton.accounts() for tx in devnet.ton.transactions(account)}
    tron = {i.tx.tx_id for i in devnet.tron.included()}
    blocks = {devnet.ton.head.root_hash, devnet.tron.head.block_id}
    return ton | tron | blocks


async def test_same_seed_and_nonce_give_byte_identical_chains_another_nonce_shares_no_id() -> None:
    first, second, other = (Devnet(ManualClock().now, seed="one", nonce=n)
                            for n in ("boot-1", "boot-1", "boot-2"))
    for devnet in (first, second, other):
        _script(devnet)
    assert await _dump(first) == await _dump(second)
    assert first.genesis == second.genesis != other.genesis
    assert _ids(first) and not _ids(first) & _ids(other)
    # Payers keep their addresses across boots: a CLI user keeps paying from "alice".
    assert first.ton.payers == other.ton.payers and first.tron.payers == other.tron.payers

