"""The Tron simulator: TRC-20 balances, 3-second blocks, solidification and reorgs.

- USDT is the REAL mainnet contract (TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t), so Krypton's
  allow-list works unchanged; a COUNTERFEIT TRC-20 emits the very same Transfer events.
- `transfer` queues a transaction; the next produced block includes it (and only then
  do balances move: a reorg can take it back).
- A block is solidified once 19 blocks are built on it: solid head = head - 19, never
  moving backwards. `finality.is_solidified(solid_head, block)` agrees by construction.
- `reorg(n)` drops the last n blocks and their transactions, refusing to touch a
  solidified block; block numbers then continue from the new head.
- Blocks are 3 s apart in simulated time: a block's timestamp is the injected clock's
  time, but never less than 3 s after its parent, so producing by hand needs no sleeping.
- A REVERT or OUT_OF_ENERGY transfer is included with its failed receipt and moves
  nothing (and, as on the chain, emits no Transfer event).
- `index_lag_ms` delays TronGrid's indexing: a block produced while it is set shows in the
  v1 lists (account transfers, contract events) only that long after it was produced, by
  the injected clock, while the node API knows it at once. Set it for one block and back
  to 0 to have TronGrid index an event after events of newer blocks, as it sometimes does.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from krypton.adapters.chains.tron import address
from krypton.adapters.chains.tron.transfer import MAINNET_USDT
from krypton.devnet.common import (
    DEFAULT_PAYERS,
    DEFAULT_SEED,
    Clock,
    Ids,
    InsufficientFunds,
    InvalidInput,
    ReorgRefused,
    SimulatedChain,
    check_amount,
    epoch_ms,
    named,
)

Result = Literal["SUCCESS", "REVERT", "OUT_OF_ENERGY"]
RESULTS: tuple[Result, ...] = get_args(Result)
USDT_CONTRACT = MAINNET_USDT
COUNTERFEIT_CONTRACT = address.from_bytes(named("tron", "counterfeit-usdt")[:20])
CONTRACTS: Mapping[str, str] = {USDT_CONTRACT: "usdt", COUNTERFEIT_CONTRACT: "counterfeit"}
SOLIDIFY_DEPTH = 19
BLOCK_MS = 3000
SUPER_REPRESENTATIVES = 27
PAYER_UNITS = 1_000_000 * 10**6
MAX_UINT256 = (1 << 256) - 1
START_HEIGHT = 100  # blocks made at start, so the solid head is a real block from the outset


@dataclass(frozen=True, slots=True)
class TronTx:
    tx_id: str
    contract: str
    from_: str
    to: str
    amount: int
    result: Result

    @property
    def succeeded(self) -> bool:
        return self.result == "SUCCESS"


@dataclass(frozen=True, slots=True)
class TronBlock:
    number: int
    timestamp: int  # milliseconds
    block_id: str  # 8-byte number + 24 bytes of a digest, as java-tron writes it
    parent_id: str
    witness: str  # 41-hex address of the producing super representative
    txs: tuple[TronTx, ...]


@dataclass(frozen=True, slots=True)
class Inclusion:
    block: TronBlock
    position: int  # the transaction's index in its block
    tx: TronTx


def payer_address(name: str) -> str:
    return address.from_bytes(named("tron", "payer", name)[:20])


class TronChain(SimulatedChain[str, TronBlock]):
    def __init__(self, clock: Clock, *, seed: str = DEFAULT_SEED,
                 payers: Sequence[str] = DEFAULT_PAYERS, start_height: int = START_HEIGHT) -> None:
        if start_height < SOLIDIFY_DEPTH:
            raise ValueError(f"start_height must be at least {SOLIDIFY_DEPTH}")
        self._clock = clock
        self._ids = Ids(f"{seed}/tron")
        self._payers = {name: payer_address(name) for name in payers}
        self._balances: dict[tuple[str, str], int] = {
            (contract, who): PAYER_UNITS for contract in CONTRACTS for who in self._payers.values()}
        self._pending: list[TronTx] = []
        self._where: dict[str, int] = {}  # included tx id -> block number
        self.index_lag_ms = 0
        self._listed_from: dict[int, int] = {}  # block number -> when TronGrid lists it (ms)
        now = epoch_ms(clock) // BLOCK_MS * BLOCK_MS
        self._blocks: list[TronBlock] = []
        for number in range(start_height + 1):
            self._append(number, now - (start_height - number) * BLOCK_MS, ())
        self._solid_floor = self.head.number - SOLIDIFY_DEPTH

    # -- reading ------------------------------------------------------------------------



    @property
    def solid_head(self) -> TronBlock:
        number = max(self._solid_floor, self.head.number - SOLIDIFY_DEPTH)
        return self._blocks[number - self._blocks[0].number]

    @property
    def pending(self) -> tuple[TronTx, ...]:
        return tuple(self._pending)

    def block(self, number: int) -> TronBlock | None:
        index = number - self._blocks[0].number
        return self._blocks[index] if 0 <= index < len(self._blocks) else None

    def listed(self, number: int) -> bool:
        """Whether TronGrid's v1 lists show block `number` yet (see `index_lag_ms`)."""
        return self._listed_from.get(number, 0) <= epoch_ms(self._clock)

    def is_solid(self, number: int) -> bool:
        return number <= self.solid_head.number

    def balance(self, owner: str, contract: str = USDT_CONTRACT) -> int:
        return self._balances.get((contract, owner), 0)

    def balances(self) -> dict[tuple[str, str], int]:
        """(contract, owner) -> balance, non-zero only."""
        return {key: value for key, value in self._balances.items() if value}

    def find(self, tx_id: str) -> Inclusion | None:
        """Where an included transaction is; None while pending, unknown or reorganised away."""
        wanted = tx_id.lower()
        number = self._where.get(wanted)
        block = None if number is None else self.block(number)
        if block is None:
            return None
        position = next(i for i, tx in enumerate(block.txs) if tx.tx_id == wanted)
        return Inclusion(block, position, block.txs[position])

    def included(self) -> Iterator[Inclusion]:
        """Every included transaction, in chain order."""
        for block in self._blocks:
            for position, tx in enumerate(block.txs):
                yield Inclusion(block, position, tx)

    # -- changing -----------------------------------------------------------------------

    def transfer(self, payer: str, to: str, amount: int, *, contract: str = USDT_CONTRACT,
                 result: Result = "SUCCESS") -> TronTx:
        """Queue a TRC-20 transfer from a payer; the next produced block includes it."""
        source = self.payer(payer)
        target = _address(to, "to")
        if contract not in CONTRACTS:
            raise InvalidInput(f"{contract} is not a devnet TRC-20 contract; use {USDT_CONTRACT} or "
                               f"{COUNTERFEIT_CONTRACT}.", field="contract")
        if result not in RESULTS:
            raise InvalidInput(f"result must be one of {', '.join(RESULTS)}, not {result!r}.", field="result")
        check_amount(amount, maximum=MAX_UINT256)
        if result == "SUCCESS":
            queued = (t for t in self._pending if t.succeeded and (t.contract, t.from_) == (contract, source))
            available = self.balance(source, contract) - sum(t.amount for t in queued)
            if available < amount:
                raise InsufficientFunds(f"{payer} can spend {available} token units, fewer than {amount}.",
                                        field="amount")
        tx = TronTx(self._ids.next("tx").hex(), contract, source, target, amount, result)
        self._pending.append(tx)
        return tx

    def produce_block(self) -> TronBlock:
        txs, self._pending = tuple(self._pending), []
        timestamp = max(epoch_ms(self._clock) // BLOCK_MS * BLOCK_MS, self.head.timestamp + BLOCK_MS)
        block = self._append(self.head.number + 1, timestamp, txs)
        self._listed_from[block.number] = epoch_ms(self._clock) + self.index_lag_ms
        for tx in txs:
            self._move(tx, +1)
            self._where[tx.tx_id] = block.number
        return block

    def reorg(self, n: int) -> tuple[TronTx, ...]:
        """Drop the last n blocks (none of them solidified) with their transactions."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidInput(f"n must be a whole number of blocks, 1 or more, not {n!r}.", field="n")
        solid = self.solid_head.number
        if self.head.number - n < solid:
            raise ReorgRefused(
                f"Cannot drop {n} blocks: only {self.head.number - solid} blocks above the solidified "
                f"block {solid} can be reorganised away.", field="n")
        dropped, self._blocks = self._blocks[-n:], self._blocks[:-n]
        for block in dropped:
            self._listed_from.pop(block.number, None)
        self._solid_floor = solid  # the solid head never moves back
        txs = tuple(tx for block in dropped for tx in block.txs)
        for tx in reversed(txs):
            self._move(tx, -1)
            del self._where[tx.tx_id]
        return txs

    def reinclude(self, tx: TronTx, result: Result) -> TronTx:
        """Queue a transaction dropped by a reorg again, re-executed with `result` (on the new
        fork it may run out of energy or revert where it succeeded before)."""
        if tx.tx_id in self._where or any(t.tx_id == tx.tx_id for t in self._pending):
            raise InvalidInput(f"Transaction {tx.tx_id} is still on the chain or queued.", field="tx")
        again = dataclasses.replace(tx, result=result)
        self._pending.append(again)
        return again

    # -- internals ----------------------------------------------------------------------

    def _move(self, tx: TronTx, sign: int) -> None:
        if not tx.succeeded:
            return
        self._balances[(tx.contract, tx.from_)] = self.balance(tx.from_, tx.contract) - sign * tx.amount
        self._balances[(tx.contract, tx.to)] = self.balance(tx.to, tx.contract) + sign * tx.amount

    def _append(self, number: int, timestamp: int, txs: tuple[TronTx, ...]) -> TronBlock:
        parent = self._blocks[-1].block_id if self._blocks else "0" * 64
        digest = self._ids.next(f"block/{number}/{parent}")
        witness = "41" + hashlib.sha256(f"sr/{number % SUPER_REPRESENTATIVES}".encode()).digest()[:20].hex()
        block = TronBlock(number, timestamp, f"{number:016x}" + digest[8:].hex(), parent, witness, txs)
        self._blocks.append(block)
        return block


def _address(text: str, field: str) -> str:
    try:
        return address.normalise(text)
    except address.InvalidAddress as exc:
        raise InvalidInput(exc.message, field=field) from None
