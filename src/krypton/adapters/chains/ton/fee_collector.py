"""The fee-collector contract (contracts/fee_collector.fc) seen from Python.

Builds, from a `FeeCollectorConfig`, exactly what the FunC side expects: the initial
data cell (contracts/README.md, "Storage layout"), the StateInit, the contract address
(hash of the StateInit cell), the deploy message body (``op::top_up``) and a ``ton://``
deploy link. `fee_split` is the split the contract's ``MULDIV`` makes (floor), which is
`krypton.domain.fees.split`. contracts/vectors/fee-collector-vectors.json, written by the
sandbox tests, pins all of this; tests/adapters/chains/ton/test_fee_collector.py checks it.

The compiled code ships next to this module as ``fee_collector_code.boc`` (a copy of the
vectors' ``code_boc_base64``); `CODE_HASH_HEX` is its hash. A recompiled contract
changes the hash, so the BOC, this constant and the vectors must be refreshed together.

Data cell (root, 108 bits + 1 ref)::

    accumulated:Coins  total_collected:Coins  total_withdrawn:Coins   (0 -> 4 bits 0000 each)
    payment_count:uint64  last_withdrawal_time:uint32                  (0)
    ^[ owner:MsgAddressInt  destination:MsgAddressInt  fee_bps:uint16  min_withdrawal:Coins ]

Addresses are stored as addr_std without anycast (``10 0 workchain:int8 hash:256``):
only (workchain, hash) counts, so the EQ/UQ/testnet form an address was typed in does
not change the collector's address.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.tlb.account import StateInit

from krypton.adapters.chains.ton.address import InvalidAddress, Network, TonAddress, parse
from krypton.adapters.chains.ton.cells import cell_to_boc, store_address
from krypton.domain import collector, fees
from krypton.domain.errors import DomainError

CODE_FILE = "fee_collector_code.boc"
CODE_HASH_HEX = "923db9b94514e2e0ea5792be53ae270447855125c30b19e6c140d3a28ca05e01"

# Contract constants (fee_collector.fc), in nanoton.
FEE_DENOMINATOR = 10_000
STORAGE_FLOOR = 50_000_000  # 0.05 TON: never withdrawn, pays the rent
MIN_NET = collector.MIN_NET  # 0.01 TON: a payment is refused (exit 102) unless value - fee >= this
MAX_COINS = (1 << 120) - 1  # Coins = VarUInteger 16: at most 15 bytes

# A deploy below the storage floor is accepted by the contract, but then the first fees
# silently refill the floor instead of reaching the owner. The deploy itself burns
# about 0.00086 TON of gas (README, "Measured gas and fees"), so ask for a margin on top.
MIN_DEPLOY_AMOUNT = STORAGE_FLOOR + 10_000_000  # 0.06 TON

# Op codes (README, "Op codes").
OP_TOP_UP = 0xAE98DB22
OP_FORCE_WITHDRAW = 0xAA1AABCC
OP_SET_MIN_WITHDRAWAL = 0x9873AF81
OP_FEES_WITHDRAWN = 0xCDF6C693  # outgoing, to the owner
OP_EXCESSES = 0xD53276DB  # outgoing, change of set_min_withdrawal


class InvalidFeeCollectorConfig(DomainError):
    code = "invalid_fee_collector_config"


@dataclass(frozen=True, slots=True)
class FeeCollectorConfig:
    """What a collector is deployed with; validated because the contract checks none of it.

    fee_bps: 0..9999. The contract does not check it at deploy; at 10000 (or more)
    ``value - fee`` is 0 < MIN_NET, so the contract would refuse every payment.
    min_withdrawal: nanoton, 0..2**120-1. Fees are flushed to the owner by the payment
    that brings them to this amount; 0 flushes on every payment that carries a fee (a
    valid contract mode, pinned by the "zero-fee-flush-always" vector), which costs the
    payer one extra message each time.
    """

    owner: TonAddress
    destination: TonAddress
    fee_bps: int
    min_withdrawal: int

    def __post_init__(self) -> None:
        for field in ("owner", "destination"):
            if not isinstance(getattr(self, field), TonAddress):
                raise InvalidFeeCollectorConfig(f"{field} must be a TonAddress.", field=field)
        if not _whole(self.fee_bps, 0, FEE_DENOMINATOR - 1):
            raise InvalidFeeCollectorConfig(
                f"fee_bps must be a whole number from 0 to {FEE_DENOMINATOR - 1}, not {self.fee_bps!r}: "
                "the contract does not check it, and at 10000 or more it refuses every payment.",
                field="fee_bps",
            )
        if not _whole(self.min_withdrawal, 0, MAX_COINS):
            raise InvalidFeeCollectorConfig(
                "min_withdrawal must be a whole number of nanoton from 0 to 2**120-1, "
                f"not {self.min_withdrawal!r}.",
                field="min_withdrawal",
            )

    @classmethod
    def parse(
        cls, owner: str, destination: str, fee_bps: int, min_withdrawal: int, *, network: Network
    ) -> FeeCollectorConfig:
        """From typed-in addresses; a testnet-only address is refused on mainnet."""
        return cls(
            _parse_address(owner, "owner", network),
            _parse_address(destination, "destination", network),
            fee_bps,
            min_withdrawal,
        )


def _whole(value: object, low: int, high: int) -> bool:
    """An int (not a bool) from low to high inclusive."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _parse_address(text: str, field: str, network: Network) -> TonAddress:
    try:
        return parse(text, network=network)
    except InvalidAddress as exc:
        raise InvalidAddress(f"{field}: {exc.message}", field=field) from None


@cache
def code() -> Cell:
    """The compiled contract shipped with the package (loaded once, hash checked)."""
    data = files("krypton.adapters.chains.ton").joinpath(CODE_FILE).read_bytes()
    cell: Cell = Cell.one_from_boc(data)
    if cell.hash.hex() != CODE_HASH_HEX:
        raise RuntimeError(
            f"{CODE_FILE} has code hash {cell.hash.hex()}, expected {CODE_HASH_HEX}; "
            "the shipped contract and this module are out of step"
        )
    return cell


def config_cell(config: FeeCollectorConfig) -> Cell:
    builder = Builder()
    store_address(builder, config.owner)
    store_address(builder, config.destination)
    builder.store_uint(config.fee_bps, 16).store_coins(config.min_withdrawal)
    cell: Cell = builder.end_cell()
    return cell


def data_cell(config: FeeCollectorConfig) -> Cell:
    """Initial data: every counter zero, the config in ref[0]."""
    builder = (
        Builder()
        .store_coins(0)  # accumulated
        .store_coins(0)  # total_collected
        .store_coins(0)  # total_withdrawn
        .store_uint(0, 64)  # payment_count
        .store_uint(0, 32)  # last_withdrawal_time
        .store_ref(config_cell(config))
    )
    cell: Cell = builder.end_cell()
    return cell


def state_init(config: FeeCollectorConfig) -> Cell:
    """StateInit with code and data only: bits ``00110``, refs (code, data)."""
    cell: Cell = StateInit(code=code(), data=data_cell(config)).serialize()
    return cell


def state_init_boc(config: FeeCollectorConfig) -> str:
    """Standard base64 BOC (with CRC32C), byte for byte what @ton/core writes."""
    return cell_to_boc(state_init(config))


def address(config: FeeCollectorConfig, workchain: int = 0) -> TonAddress:
    """The collector's address; show it bounceable (``EQ…``), it is a contract."""
    return TonAddress(workchain, state_init(config).hash)


def top_up_body(query_id: int = 0) -> Cell:
    """``op::top_up query_id:uint64``: the deploy message body (owner only)."""
    if not _whole(query_id, 0, (1 << 64) - 1):
        raise ValueError("query_id must fit in 64 bits")
    cell: Cell = Builder().store_uint(OP_TOP_UP, 32).store_uint(query_id, 64).end_cell()
    return cell


def deploy_link(config: FeeCollectorConfig, amount_nanotons: int, *, testnet: bool = False) -> str:
    """``ton://transfer/<EQ…>?amount=<n>&init=<state init>&bin=<top_up body>``.

    BOCs are base64url without padding (what @ton/core's ``toBoc().toString('base64url')``
    gives and wallets decode); the address is bounceable (``kQ…`` with testnet=True), so a
    deploy that fails comes back. The link must be opened in the OWNER's wallet: top_up
    from anyone else is refused with exit 101 and bounces. The amount stays in the
    collector as its storage floor; at least MIN_DEPLOY_AMOUNT.
    """
    if not _whole(amount_nanotons, MIN_DEPLOY_AMOUNT, MAX_COINS):
        raise InvalidFeeCollectorConfig(
            f"The deploy amount must be at least {MIN_DEPLOY_AMOUNT} nanoton (0.06 TON: the 0.05 TON "
            f"storage floor plus the deploy's gas), not {amount_nanotons!r}.",
            field="amount",
        )
    target = address(config).friendly(bounceable=True, testnet=testnet)
    init = _base64url(state_init(config))
    body = _base64url(top_up_body())
    return f"ton://transfer/{target}?amount={amount_nanotons}&init={init}&bin={body}"


def _base64url(cell: Cell) -> str:
    return cell_to_boc(cell).replace("+", "-").replace("/", "_").rstrip("=")


def fee_split(amount: int, fee_bps: int) -> tuple[int, int]:
    """(fee, net) as ``get_fee(amount)`` returns them: fee = floor(amount * fee_bps / 10000)."""
    split = fees.split(amount, fee_bps)
    return split.fee, split.net


def min_payment(fee_bps: int) -> int:
    """The smallest payment the contract accepts (smaller ones bounce with exit 102)."""
    if not _whole(fee_bps, 0, FEE_DENOMINATOR - 1):
        raise InvalidFeeCollectorConfig(
            f"fee_bps must be a whole number from 0 to {FEE_DENOMINATOR - 1}.", field="fee_bps"
        )
    return collector.min_payment(fee_bps)
