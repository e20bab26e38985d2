"""The fee-collector contract (contracts/fee_collector.fc) as the TON simulator runs it.

Pure functions over `CollectorState`, the contract's persistent data: `from_state_init`
reads a StateInit the way the chain would deploy it, `receive` is ``recv_internal``
(payment, owner ops, bounced messages, refusals with the contract's exit codes), and
`stats` / `config` / `fee_split` are the get-methods. TonChain (ton.py) turns an
`Outcome` into transactions and messages.

The logic follows the FunC code step by step, op codes, exit codes and the order of the
checks included, with one deliberate difference: the devnet charges no gas and no
forwarding fees. So where the contract sends "everything left over" (send mode 128),
the simulator sends exactly what is left over without fees:

- a payment forwards exactly ``value - fee`` to the destination (the real contract
  forwards ``value - fee - gas - forwarding fees``), and the collector grows by exactly
  the fee, less a flush;
- a threshold flush sends ``min(accumulated, original + fee - STORAGE_FLOOR)`` to the
  owner, FIRST, then the forward (the contract's order of actions);
- a message too small to buy any gas, which the real chain does not even run (its value
  stays in the contract), is run here and refused with 102 like any small payment.

contracts/vectors/fee-collector-vectors.json ("sequences") pins the counters after each
payment as the sandbox measured them; tests/devnet/test_collector.py
replays them here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton import fee_collector as fc
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import CellFormatError, Reader
from krypton.devnet.common import InvalidInput

# Exit codes of the compute phase (README "Exit codes"); 9 is TVM's cell underflow.
EXIT_OK = 0
EXIT_CELL_UNDERFLOW = 9
EXIT_NOT_OWNER = 101
EXIT_PAYMENT_TOO_SMALL = 102
EXIT_NOTHING_TO_WITHDRAW = 103
EXIT_UNKNOWN_OP = 104

OP_PAYMENT = 0
OWNER_OPS = (fc.OP_TOP_UP, fc.OP_FORCE_WITHDRAW, fc.OP_SET_MIN_WITHDRAWAL)
MAX_UINT64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class CollectorState:
    """The contract's data: the config cell's fields and the root cell's counters."""

    owner: TonAddress
    destination: TonAddress
    fee_bps: int  # uint16; the contract does not check it, above 9999 it refuses every payment
    min_withdrawal: int
    accumulated: int = 0
    total_collected: int = 0
    total_withdrawn: int = 0
    payment_count: int = 0
    last_withdrawal_time: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """One outgoing message of the contract. All of them are non-bounceable (msg_header 0x10)."""

    to: TonAddress
    value: int
    body: Cell


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one incoming message did: exit code, the data afterwards, the messages sent in
    action order. A refusal (exit code != 0) leaves the data as it was and sends nothing:
    the caller bounces the message or keeps its value, as the chain does."""

    exit_code: int
    state: CollectorState
    sends: tuple[Send, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.exit_code == EXIT_OK


# -- deploy ---------------------------------------------------------------------------------


def from_state_init(state_init: Cell) -> CollectorState:
    """The collector a StateInit deploys; InvalidInput with a sentence when it is not one.

    Only the plain form Krypton builds is taken (README "Storage layout": no split_depth,
    no special, code and data as refs, no library), and only with the fee collector's code,
    so a devnet collector always runs the logic below.
    """
    code, data = _code_and_data(state_init)
    code_hash = code.hash.hex()
    if code_hash != fc.CODE_HASH_HEX:
        raise InvalidInput(
            f"The state init's code has hash {code_hash}, not the fee collector's {fc.CODE_HASH_HEX}: "
            "the devnet deploys only the fee-collector contract (build it with fee_collector.state_init).",
            field="state_init")
    try:
        return _read_data(data)
    except CellFormatError as exc:
        raise InvalidInput(f"The state init's data cell is not a fee-collector data cell: {exc}.",
                           field="state_init") from None


def _code_and_data(state_init: Cell) -> tuple[Cell, Cell]:
    # StateInit: split_depth:(Maybe (## 5)) special:(Maybe TickTock) code:(Maybe ^Cell)
    # data:(Maybe ^Cell) library:(HashmapE 256 SimpleLib) -> exactly the bits 00110 and 2 refs.
    untyped: Any = state_init
    plain = (not state_init.is_exotic and len(untyped.bits) == 5 and len(untyped.refs) == 2
             and untyped.begin_parse().preload_uint(5) == 0b00110)
    if not plain:
        raise InvalidInput(
            "state_init is not a plain StateInit with code and data only (bits 00110 and two references): "
            "no split_depth, special flags or libraries.", field="state_init")
    code: Cell = untyped.refs[0]
    data: Cell = untyped.refs[1]
    return code, data


def _read_data(data: Cell) -> CollectorState:
    # load_data(): three Coins, uint64, uint32, then the config in ref 0. Like the contract,
    # trailing bits are ignored.
    root = Reader(data)
    accumulated = root.coins("accumulated")
    total_collected = root.coins("total_collected")
    total_withdrawn = root.coins("total_withdrawn")
    payment_count = root.uint(64, "payment_count")
    last_withdrawal_time = root.uint(32, "last_withdrawal_time")
    config = Reader(root.ref("the config cell (ref 0)"))
    owner = _required_address(config, "owner")
    destination = _required_address(config, "destination")
    fee_bps = config.uint(16, "fee_bps")
    min_withdrawal = config.coins("min_withdrawal")
    return CollectorState(owner, destination, fee_bps, min_withdrawal, accumulated, total_collected,
                          total_withdrawn, payment_count, last_withdrawal_time)


def _required_address(reader: Reader, what: str) -> TonAddress:
    address = reader.address(what)
    if address is None:
        raise CellFormatError(f"{what} is addr_none; the collector needs a standard address")
    return address


# -- recv_internal ----------------------------------------------------------------------------


def receive(state: CollectorState, *, sender: TonAddress, value: int, body: Cell, bounced: bool,
            balance_before: int, now: int) -> Outcome:
    """``recv_internal`` for one internal message.

    balance_before: the collector's balance before this message's value was credited (the
    contract's "original balance"; the devnet has no storage rent). now: unix time.
    """
    if bounced:
        return Outcome(EXIT_OK, state)  # accepted and ignored: the value simply stays
    untyped: Any = body
    bits, refs = len(untyped.bits), len(untyped.refs)
    if bits == 0 and refs == 0:
        return _payment(state, value, Builder().end_cell(), balance_before, now)
    if bits < 32:
        return Outcome(EXIT_UNKNOWN_OP, state)
    op = int(untyped.begin_parse().preload_uint(32))
    if op == OP_PAYMENT:
        return _payment(state, value, body, balance_before, now)
    if op not in OWNER_OPS:
        return Outcome(EXIT_UNKNOWN_OP, state)
    return _owner_op(state, op, sender=sender, value=value, body=body, balance_before=balance_before,
                     now=now)


def _payment(state: CollectorState, value: int, comment: Cell, balance_before: int, now: int) -> Outcome:
    fee = muldiv_floor(value, state.fee_bps)
    # The payer's costs come out of value - fee, so a payment that cannot cover them is
    # refused; this also refuses everything when fee_bps > 10000.
    if value - fee < fc.MIN_NET:
        return Outcome(EXIT_PAYMENT_TOO_SMALL, state)
    paid = replace(state, accumulated=state.accumulated + fee, total_collected=state.total_collected + fee,
                   payment_count=state.payment_count + 1)
    sends: list[Send] = []
    if paid.accumulated >= paid.min_withdrawal:
        # Never below the storage floor: a shortfall is written off with the flush.
        amount = min(paid.accumulated, balance_before + fee - fc.STORAGE_FLOOR)
        if amount > 0:
            # The flush is sent FIRST, as in the contract, then the forward.
            sends.append(Send(paid.owner, amount, fees_withdrawn_body(0)))
            paid = replace(paid, total_withdrawn=paid.total_withdrawn + amount, accumulated=0,
                           last_withdrawal_time=now)
    # Mode 128 over the reserve of original + fee - flush: with no gas that is value - fee.
    sends.append(Send(paid.destination, value - fee, comment))
    return Outcome(EXIT_OK, paid, tuple(sends))


def _owner_op(state: CollectorState, op: int, *, sender: TonAddress, value: int, body: Cell,
              balance_before: int, now: int) -> Outcome:
    reader = Reader(body)
    try:
        reader.uint(32, "op")
        query_id = reader.uint(64, "query_id")
    except CellFormatError:
        return Outcome(EXIT_CELL_UNDERFLOW, state)  # the contract loads query_id before anything else
    if sender != state.owner:
        return Outcome(EXIT_NOT_OWNER, state)
    if op == fc.OP_TOP_UP:
        return Outcome(EXIT_OK, state)  # deploy / top-up: the value stays
    if op == fc.OP_FORCE_WITHDRAW:
        amount = min(state.accumulated, balance_before - fc.STORAGE_FLOOR)
        if amount <= 0:
            return Outcome(EXIT_NOTHING_TO_WITHDRAW, state)
        # Reserve original - amount, mode 128: the fees plus the whole incoming value go back.
        withdrawn = replace(state, accumulated=0, total_withdrawn=state.total_withdrawn + amount,
                            last_withdrawal_time=now)
        answer = Send(state.owner, value + amount, fees_withdrawn_body(query_id))
        return Outcome(EXIT_OK, withdrawn, (answer,))
    try:
        new_min = reader.coins("min_withdrawal")
    except CellFormatError:
        return Outcome(EXIT_CELL_UNDERFLOW, state)
    # set_min_withdrawal: reserve the original balance, the whole value goes back as excesses.
    changed = replace(state, min_withdrawal=new_min)
    return Outcome(EXIT_OK, changed, (Send(state.owner, value, excesses_body(query_id)),))


# -- bodies ---------------------------------------------------------------------------------


def fees_withdrawn_body(query_id: int) -> Cell:
    """``op::fees_withdrawn query_id:uint64``: a flush (query_id 0) or a force_withdraw's answer."""
    cell: Cell = Builder().store_uint(fc.OP_FEES_WITHDRAWN, 32).store_uint(query_id, 64).end_cell()
    return cell


def excesses_body(query_id: int) -> Cell:
    cell: Cell = Builder().store_uint(fc.OP_EXCESSES, 32).store_uint(query_id, 64).end_cell()
    return cell


def owner_op_body(op: int, query_id: int = 0) -> Cell:
    """``op query_id:uint64``: top_up and force_withdraw (set_min_withdrawal adds Coins)."""
    if not 0 <= query_id <= MAX_UINT64:
        raise InvalidInput("query_id must be a whole number from 0 to 2**64-1.", field="query_id")
    cell: Cell = Builder().store_uint(op, 32).store_uint(query_id, 64).end_cell()
    return cell


# -- get-methods ------------------------------------------------------------------------------


def muldiv_floor(amount: int, fee_bps: int) -> int:
    """TVM's MULDIV: floor(amount * fee_bps / 10000), also for a negative amount."""
    return amount * fee_bps // fc.FEE_DENOMINATOR


def stats(state: CollectorState) -> tuple[int, int, int, int, int, int, int]:
    """get_stats(): (accumulated, total_collected, total_withdrawn, payment_count,
    last_withdrawal_time, min_withdrawal, fee_bps)."""
    return (state.accumulated, state.total_collected, state.total_withdrawn, state.payment_count,
            state.last_withdrawal_time, state.min_withdrawal, state.fee_bps)


def config(state: CollectorState) -> tuple[TonAddress, TonAddress, int, int, int, int]:
    """get_config(): (owner, destination, fee_bps, min_withdrawal, storage_floor, min_net)."""
    return (state.owner, state.destination, state.fee_bps, state.min_withdrawal, fc.STORAGE_FLOOR,
            fc.MIN_NET)


def fee_split(state: CollectorState, amount: int) -> tuple[int, int]:
    """get_fee(amount): (fee, amount - fee), before the payer's gas and forwarding costs."""
    fee = muldiv_floor(amount, state.fee_bps)
    return fee, amount - fee
