"""The devnet: both simulators and the provider faults, shared by the HTTP app, the block
timer and the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from krypton.devnet.common import DEFAULT_PAYERS, DEFAULT_SEED, Clock, InvalidInput, genesis_id
from krypton.devnet.faults import Faults
from krypton.devnet.ton import TonChain
from krypton.devnet.tron import TronChain

ChainName = Literal["ton", "tron"]
MAX_BLOCKS_AT_ONCE = 1000


class Devnet:
    def __init__(self, clock: Clock, *, seed: str = DEFAULT_SEED, nonce: str = "",
                 payers: Sequence[str] = DEFAULT_PAYERS) -> None:
        """`nonce` makes this a chain of its own: every hash and id differs from those of the
        same seed with another nonce (the server draws one per boot, so a restart on the same
        database never repeats an id); the same seed and nonce give the same chain again."""
        if not payers:
            raise ValueError("the devnet needs at least one payer")
        self.clock = clock
        self.seed = seed
        self.nonce = nonce
        # No nonce: the seed alone, as before nonces existed (tests' recorded chains).
        chain_seed = f"{seed}/{nonce}" if nonce else seed
        self.genesis = genesis_id(chain_seed)
        self.ton = TonChain(clock, seed=chain_seed, payers=payers)
        self.tron = TronChain(clock, seed=chain_seed, payers=payers)
        self.faults = Faults()

    @property
    def default_payer(self) -> str:
        return next(iter(self.ton.payers))

    def produce(self, chain: str, count: int = 1) -> int:
        """Produce `count` blocks on one chain; returns the new head's number."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BLOCKS_AT_ONCE:
            raise InvalidInput(f"count must be a whole number from 1 to {MAX_BLOCKS_AT_ONCE}.", field="count")
        if chain == "ton":
            for _ in range(count):
                self.ton.produce_block()
            return self.ton.head.seqno
        if chain == "tron":
            for _ in range(count):
                self.tron.produce_block()
            return self.tron.head.number
        raise InvalidInput(f"chain must be 'ton' or 'tron', not {chain!r}.", field="chain")
