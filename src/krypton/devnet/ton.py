"""The TON simulator: accounts, jetton wallets, messages, transactions and masterchain blocks.

Model, kept as close to the chain as the receiving side can observe:

- Every payment is a chain of transactions, one per account a message reaches, each with
  its incoming message and the messages it sends. lt comes from one global counter, so it
  increases strictly per account and a message's created_lt lies between its sender's and
  its receiver's transaction.
- A transaction is pending until the next masterchain block is produced; that block gives
  it `mc_block_seqno`, and on TON that is final (one block = final, no reorgs).
- USDT is the jetton master at the REAL mainnet address of the asset catalogue, so
  Krypton's allow-list works unchanged; a COUNTERFEIT master has wallets of its own. A
  jetton wallet's address is a digest of (master, owner), the same for every seed.
- Faults: an undeliverable bounceable message is refused and bounces back (0xffffffff +
  the first 256 bits of the body) and is never credited; an undeliverable NON-bounceable
  message is credited and the transaction aborted, as for an undeployed account on the
  real chain (see the recorded fixture toncenter-v3-transactions-comment.json).
- Fee collectors (contracts/fee_collector.fc, logic in ton_collector.py): `deploy_collector`
  takes the StateInit Krypton builds; from then on every message to that address runs the
  contract, which decides itself whether a message is accepted (a refusal bounces a
  bounceable message, or keeps a non-bounceable one and aborts, with the contract's exit
  code in the compute phase). The owner is not a devnet wallet: the deploy and owner-op
  messages arrive from the owner's address, and their value is not taken from anywhere.

Fees are zero so balances stay easy to check; nothing here reads the wall clock.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton import fee_collector
from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.jetton import MAX_AMOUNT, build_notification
from krypton.adapters.chains.ton.wallet_messages import JettonTransfer, parse_jetton_transfer
from krypton.devnet import ton_bodies as bodies
from krypton.devnet import ton_collector as collector_logic
from krypton.devnet import ton_wallet as wallet_logic
from krypton.devnet.common import (
    DEFAULT_PAYERS,
    DEFAULT_SEED,
    Clock,
    Ids,
    InsufficientFunds,
    InvalidInput,
    SimulatedChain,
    check_amount,
    epoch_s,
    named,
)
from krypton.devnet.ton_collector import CollectorState
from krypton.domain.assets import USDT_TON

USDT_MASTER = parse(USDT_TON.contract or "", network="mainnet")
COUNTERFEIT_MASTER = TonAddress(0, named("ton", "counterfeit-usdt-master"))
MASTERS: Mapping[TonAddress, str] = {USDT_MASTER: "usdt", COUNTERFEIT_MASTER: "counterfeit"}
PAYER_NANOTONS = 1_000_000 * 10**9
PAYER_JETTONS = 1_000_000 * 10**6
# TON a payer attaches to a jetton transfer on top of forward_ton_amount; it comes back as
# "excesses" (no fees on the devnet).
JETTON_GAS = 50_000_000
MAX_NANOTONS = (1 << 120) - 1
MAX_COMMENT_BYTES = 4096
FIRST_LT = 1_000_000
# TON an owner attaches to an owner op (the contract's gas table uses 0.05 TON); it comes back.
OWNER_OP_VALUE = 50_000_000
# The exit code a jetton wallet refuses a transfer with (not its owner, too few jettons):
# the reference jetton wallet's "not enough balance"/"unauthorised" throws are in this range.
_JETTON_REFUSED = 706
ZERO_HASH = base64.b64encode(bytes(32)).decode("ascii")


@dataclass(frozen=True, slots=True)
class TonMessage:
    hash: str
    source: TonAddress | None  # None: an external message (a wallet app's signed order)
    destination: TonAddress
    value: int | None
    body: Cell
    created_lt: int | None
    created_at: int | None
    bounce: bool | None
    bounced: bool | None
    init: Cell | None = None  # the StateInit a deploy message carries


@dataclass(slots=True)
class TonTransaction:
    account: TonAddress
    lt: int
    hash: str
    now: int
    in_msg: TonMessage
    out_msgs: tuple[TonMessage, ...]
    aborted: bool
    credit: int | None
    orig_status: str
    end_status: str
    balance_before: int
    balance_after: int
    prev_hash: str
    prev_lt: int
    mc_block_seqno: int | None = None  # set by the masterchain block that includes it
    # The compute phase's exit code when contract code ran (fee collectors); None for the
    # accounts the devnet runs no code for (wallets, undeployed addresses).
    exit_code: int | None = None
    # A wallet contract's action phase that failed (37: not enough funds), nothing sent.
    action_result_code: int | None = None


@dataclass(frozen=True, slots=True)
class MasterchainBlock:
    seqno: int
    gen_utime: int
    start_lt: int
    end_lt: int
    root_hash: str
    file_hash: str
    tx_count: int


@dataclass(frozen=True, slots=True)
class JettonWallet:
    address: TonAddress
    owner: TonAddress
    master: TonAddress
    balance: int


def jetton_wallet_address(owner: TonAddress, master: TonAddress) -> TonAddress:
    """The jetton wallet of `owner` under `master` (what get_wallet_address returns)."""
    return TonAddress(0, named("ton", "jetton-wallet", master.raw, owner.raw))


def payer_address(name: str) -> TonAddress:
    return TonAddress(0, named("ton", "payer", name))


class TonChain(SimulatedChain[TonAddress, MasterchainBlock]):
    def __init__(self, clock: Clock, *, seed: str = DEFAULT_SEED,
                 payers: Sequence[str] = DEFAULT_PAYERS) -> None:
        self._clock = clock
        self._ids = Ids(f"{seed}/ton")
        self._lt = FIRST_LT
        self._balances: dict[TonAddress, int] = {}
        self._active: set[TonAddress] = set()
        self._jettons: dict[tuple[TonAddress, TonAddress], int] = {}  # (master, owner) -> balance
        self._wallets: dict[TonAddress, tuple[TonAddress, TonAddress]] = {}  # deployed -> (master, owner)
        self._txs: dict[TonAddress, list[TonTransaction]] = {}
        self._pending: list[TonTransaction] = []
        self._payers = {name: payer_address(name) for name in payers}
        self._seqnos: dict[TonAddress, int] = {}
        self._query_ids = 0
        self._collectors: dict[TonAddress, CollectorState] = {}
        self._hot_wallets: dict[TonAddress, wallet_logic.WalletState] = {}  # wallet contracts (ton_wallet.py)
        for address in self._payers.values():
            self._balances[address] = PAYER_NANOTONS
            self._active.add(address)
            for master in MASTERS:
                self._jettons[(master, address)] = PAYER_JETTONS
                self._deploy_wallet(master, address)
        self._active.update(MASTERS)
        self._blocks: list[MasterchainBlock] = [self._block(1, epoch_s(clock), FIRST_LT, FIRST_LT, 0)]

    # -- reading ------------------------------------------------------------------------


    @property
    def first(self) -> MasterchainBlock:
        return self._blocks[0]


    @property
    def pending(self) -> tuple[TonTransaction, ...]:
        return tuple(self._pending)

    def balance(self, address: TonAddress) -> int:
        return self._balances.get(address, 0)

    def balances(self) -> dict[TonAddress, int]:
        return {a: b for a, b in self._balances.items() if b}

    def jetton_balance(self, owner: TonAddress, master: TonAddress = USDT_MASTER) -> int:
        return self._jettons.get((master, owner), 0)

    def jetton_wallet_of(self, owner: TonAddress, master: TonAddress = USDT_MASTER) -> TonAddress:
        """The receiving side's way to learn its own jetton wallet (get_wallet_address)."""
        if master not in MASTERS:
            raise InvalidInput(f"{master.raw} is not a devnet jetton master.", field="master")
        return jetton_wallet_address(owner, master)

    def jetton_wallets(self) -> list[JettonWallet]:
        """Deployed jetton wallets only: like the real indexer, a wallet appears once it has
        received jettons (or was funded at genesis), not when its address is computed."""
        return [JettonWallet(wallet, owner, master, self.jetton_balance(owner, master))
                for wallet, (master, owner) in self._wallets.items()]

    def is_contract(self, address: TonAddress) -> bool:
        """Jetton masters and wallets, fee collectors; shown bounceable (EQ...) like contracts
        on the real chain."""
        return address in MASTERS or address in self._wallets or address in self._collectors

    def collector(self, address: TonAddress) -> CollectorState | None:
        """The data of a deployed fee collector (what its get-methods read), None otherwise."""
        return self._collectors.get(address)

    def collectors(self) -> dict[TonAddress, CollectorState]:
        return dict(self._collectors)

    def wallet(self, address: TonAddress) -> wallet_logic.WalletState | None:
        """A deployed v4r2/v5r1 wallet contract's state (its get-methods read it), else None."""
        return self._hot_wallets.get(address)

    def by_message(self, message_hash: str) -> list[TonTransaction]:
        """The transactions whose incoming message has this hash (final and pending)."""
        return [tx for history in self._txs.values() for tx in history if tx.in_msg.hash == message_hash]

    def transactions(self, account: TonAddress, *, include_pending: bool = False) -> list[TonTransaction]:
        """The account's transactions by lt, oldest first; only final ones unless asked."""
        return [tx for tx in self._txs.get(account, [])
                if include_pending or tx.mc_block_seqno is not None]

    def accounts(self) -> list[TonAddress]:
        return sorted(self._txs, key=lambda a: a.raw)

    # -- payments -----------------------------------------------------------------------

    def pay_ton(self, payer: str, to: TonAddress, amount: int, comment: str | None = None, *,
                bounceable: bool = False, undeliverable: bool = False) -> TonTransaction:
        """Send `amount` nanotons from a payer wallet; returns the RECIPIENT's transaction.

        undeliverable: the recipient cannot take the message (an undeployed or failing
        contract). A bounceable message then bounces back to the payer, uncredited; a
        non-bounceable one is credited and the recipient's transaction aborted. Ignored
        for a deployed fee collector: its contract decides (a payment too small for it is
        refused with exit 102, whatever the caller asked).
        """
        source = self.payer(payer)
        check_amount(amount, maximum=MAX_NANOTONS)
        _check_comment(comment)
        self._check_funds(source, amount)
        out = self._order(source, to, amount, bodies.comment(comment), bounce=bounceable)
        if to in self._collectors:
            return self._run_collector(to, out)
        if undeliverable:
            return self._refuse(to, out)
        return self._execute(to, out, (), credit=amount)

    def send_body(self, payer: str, to: TonAddress, amount: int, body: Cell) -> TonTransaction:
        """A payer wallet sends `amount` nanotons with any body (a forged transfer_notification,
        jetton excesses, ...); returns the recipient's transaction. For tests of the receiving
        side: a real wallet can send any body too."""
        source = self.payer(payer)
        if amount != 0:  # a message may carry no value at all
            check_amount(amount, maximum=MAX_NANOTONS)
        self._check_funds(source, amount)
        return self._deliver(self._order(source, to, amount, body, bounce=False))

    # -- wallet contracts (the signer's hot wallet) ---------------------------------------

    def fund(self, address: TonAddress, amount: int) -> None:
        """Genesis money at an address nobody deployed yet (the signer's hot wallet): the
        account holds the balance, uninit, until an external with its StateInit deploys it."""
        check_amount(amount, maximum=MAX_NANOTONS)
        self._balances[address] = self.balance(address) + amount

    def deploy_wallet_contract(self, state_init: Cell, amount: int = 0) -> TonAddress:
        """Deploy a v4r2/v5r1 wallet from its StateInit (for tests), funded with `amount`."""
        untyped: Any = state_init
        address = TonAddress(0, untyped.hash)
        self._hot_wallets[address] = wallet_logic.from_state_init(state_init)
        self._active.add(address)
        if amount:
            self.fund(address, amount)
        return address

    def send_external(self, message: Cell) -> TonTransaction:
        """sendBoc: an external message to a wallet contract. Returns the wallet's transaction,
        or raises WalletRefused when the contract does not accept it (nothing changes then)."""
        header = wallet_logic.parse_external(message)
        address = header.destination
        state = self._hot_wallets.get(address)
        if state is None:
            if header.init is None:
                raise wallet_logic.WalletRefused(0, f"{address.raw} has no wallet contract and the "
                                                 "message carries no StateInit")
            untyped: Any = header.init
            if untyped.hash != address.hash:
                raise wallet_logic.WalletRefused(0, "the StateInit is not the destination address's")
            state = wallet_logic.from_state_init(header.init)
        accepted = wallet_logic.receive_external(state, header.body, now=epoch_s(self._clock))
        deploying = address not in self._hot_wallets
        self._hot_wallets[address] = accepted.state
        sends, failed = wallet_logic.apply_actions(self.balance(address), accepted.sends)
        external = TonMessage(header.hash, None, address, None, header.body, None, None, None, None,
                              header.init)
        lt = self._next_lt()
        outs = tuple(self._message(address, s.destination, s.value, s.body, bounce=s.bounce) for s in sends)
        tx = self._record(address, lt, external, outs, credit=None, delta=-sum(s.value for s in sends),
                          exit_code=0, activate=deploying)
        tx.action_result_code = failed
        for out in outs:
            self._deliver_or_bounce(out)
        return tx

    def _deliver_or_bounce(self, message: TonMessage) -> TonTransaction:
        """A message to an account with no contract (never deployed): a bounceable one bounces
        back, a non-bounceable one is credited and the transaction aborted, as on the chain."""
        destination = message.destination
        if destination in self._collectors or destination in self._active:
            return self._deliver(message)
        return self._refuse(destination, message)

    # -- fee collectors -----------------------------------------------------------------

    def deploy_collector(self, state_init: Cell,
                         amount: int = fee_collector.MIN_DEPLOY_AMOUNT) -> TonAddress:
        """Deploy a fee collector from its StateInit; returns its address (0:<state init hash>).

        As on the chain, the deploy is the owner's top_up carrying the state init, and its
        value stays in the collector (on top of anything the address already held). The
        transaction is recorded on the collector only: the owner's wallet is not simulated.
        """
        state = collector_logic.from_state_init(state_init)
        check_amount(amount, maximum=MAX_NANOTONS)
        if amount < fee_collector.MIN_DEPLOY_AMOUNT:
            raise InvalidInput(
                f"amount must be at least {fee_collector.MIN_DEPLOY_AMOUNT} nanotons (0.06 TON: the 0.05 TON "
                f"storage floor the collector never withdraws, plus a margin), not {amount}.", field="amount")
        untyped_init: Any = state_init
        address = TonAddress(0, untyped_init.hash)
        if address in self._collectors:
            raise InvalidInput(f"A fee collector is already deployed at {address.raw} from this state init; "
                               "change the config to deploy another one.", field="state_init")
        message = self._message(state.owner, address, amount, fee_collector.top_up_body(), bounce=True,
                                init=state_init)
        # top_up from the owner always succeeds (exit 0) and sends nothing: record it directly.
        self._collectors[address] = state
        self._record(address, self._next_lt(), message, (), credit=amount, delta=amount, exit_code=0,
                     activate=True)
        return address

    def force_withdraw(self, collector: TonAddress, *, query_id: int = 0, value: int = OWNER_OP_VALUE,
                       sender: TonAddress | None = None) -> TonTransaction:
        """The owner's op::force_withdraw (sender defaults to the owner); returns the collector's
        transaction. Refused with 101 from anyone else, 103 when nothing is withdrawable; a
        refusal bounces back to the sender."""
        state = self._collectors.get(collector)
        if state is None:
            raise InvalidInput(f"{collector.raw} is not a deployed fee collector.", field="collector")
        check_amount(value, field="value", maximum=MAX_NANOTONS)
        body = collector_logic.owner_op_body(fee_collector.OP_FORCE_WITHDRAW, query_id)
        message = self._message(sender or state.owner, collector, value, body, bounce=True)
        return self._run_collector(collector, message)

    def pay_jetton(self, payer: str, to_owner: TonAddress, amount: int, comment: str | None = None, *,
                   counterfeit: bool = False, forward_ton_amount: int = 1,
                   notification_body: Cell | None = None) -> TonTransaction:
        """Send jettons (USDT, or the counterfeit token) from a payer to `to_owner`.

        Returns the owner's transaction with the transfer_notification from its jetton
        wallet; when forward_ton_amount is 0 no notification (and no comment) reaches the
        owner, and the recipient jetton wallet's transaction is returned instead.
        notification_body: what the owner's jetton wallet sends instead of the standard
        notification (a wallet with a bug, for tests of the receiving side).
        """
        master = COUNTERFEIT_MASTER if counterfeit else USDT_MASTER
        source = self.payer(payer)
        check_amount(amount, maximum=MAX_AMOUNT)
        _check_forward(forward_ton_amount)
        _check_comment(comment)
        if self.jetton_balance(source, master) < amount:
            raise InsufficientFunds(
                f"{payer} holds {self.jetton_balance(source, master)} jetton units, fewer than {amount}.",
                field="amount")
        attached = forward_ton_amount + JETTON_GAS
        self._check_funds(source, attached)
        self._query_ids += 1
        query_id, payload = self._query_ids, bodies.forward_payload(comment)
        source_wallet = jetton_wallet_address(source, master)
        target_wallet = jetton_wallet_address(to_owner, master)

        transfer = bodies.jetton_transfer(query_id, amount, to_owner, source, forward_ton_amount, payload)
        order = self._order(source, source_wallet, attached, transfer, bounce=True)
        lt = self._next_lt()
        handover = bodies.internal_transfer(query_id, amount, source, source, forward_ton_amount, payload)
        internal = self._message(source_wallet, target_wallet, attached, handover, bounce=True)
        self._record(source_wallet, lt, order, (internal,), credit=attached, delta=0)
        self._jettons[(master, source)] -= amount

        lt = self._next_lt()
        notification = None
        if forward_ton_amount > 0:
            body = notification_body or build_notification(query_id, amount, source, comment)
            notification = self._message(target_wallet, to_owner, forward_ton_amount, bounce=False,
                                         body=body)
        excess = self._message(target_wallet, source, JETTON_GAS, bodies.excesses(query_id), bounce=False)
        outs = (excess,) if notification is None else (notification, excess)
        self._deploy_wallet(master, to_owner)
        received = self._record(target_wallet, lt, internal, outs, credit=attached, delta=0)
        self._jettons[(master, to_owner)] = self.jetton_balance(to_owner, master) + amount
        if notification is not None:
            received = self._deliver(notification)
        self._execute(source, excess, (), credit=JETTON_GAS)
        return received

    def fund_jetton(self, owner: TonAddress, amount: int, master: TonAddress = USDT_MASTER) -> None:
        """Give `owner` jettons (deploying its jetton wallet), as a faucet would: the hot
        wallet's USDT on the devnet."""
        check_amount(amount, maximum=MAX_AMOUNT)
        self._jettons[(master, owner)] = self.jetton_balance(owner, master) + amount
        self._deploy_wallet(master, owner)

    def produce_block(self) -> MasterchainBlock:
        """The next masterchain block: every pending transaction becomes final in it."""
        included, self._pending = self._pending, []
        seqno = self.head.seqno + 1
        start = min((tx.lt for tx in included), default=self.head.end_lt)
        end = max((tx.lt for tx in included), default=self.head.end_lt)
        for tx in included:
            tx.mc_block_seqno = seqno
        block = self._block(seqno, max(epoch_s(self._clock), self.head.gen_utime), start, end, len(included))
        self._blocks.append(block)
        return block

    # -- internals ----------------------------------------------------------------------

    def _deploy_wallet(self, master: TonAddress, owner: TonAddress) -> None:
        wallet = jetton_wallet_address(owner, master)
        self._wallets[wallet] = (master, owner)
        self._active.add(wallet)

    def _check_funds(self, source: TonAddress, amount: int) -> None:
        if self.balance(source) < amount:
            raise InsufficientFunds(
                f"{source.raw} holds {self.balance(source)} nanotons, fewer than {amount}.", field="amount")

    def _order(self, source: TonAddress, to: TonAddress, value: int, body: Cell, *,
               bounce: bool) -> TonMessage:
        """The payer wallet's own transaction (an external order) and the message it sends."""
        self._seqnos[source] = self._seqnos.get(source, 0) + 1
        external = TonMessage(self._hash(), None, source, None, bodies.external_stub(self._seqnos[source]),
                              None, None, None, None)
        lt = self._next_lt()
        out = self._message(source, to, value, body, bounce=bounce)
        self._record(source, lt, external, (out,), credit=None, delta=-value)
        return out

    def _deliver(self, message: TonMessage) -> TonTransaction:
        """The destination's transaction for a message: a collector runs its contract, a jetton
        wallet a transfer its owner's wallet contract sent (the signer's hot wallet), any other
        account is simply credited."""
        if message.destination in self._collectors:
            return self._run_collector(message.destination, message)
        if message.destination in self._wallets and bodies.opcode(message.body) == bodies.OP_TRANSFER:
            return self._run_jetton_wallet(message)
        return self._execute(message.destination, message, (), credit=message.value or 0)

    def _run_jetton_wallet(self, message: TonMessage) -> TonTransaction:
        """A TEP-74 transfer sent to a jetton wallet by a wallet contract (the hot wallet's
        payouts): checked as the jetton wallet's code checks it (sender is the owner, balance
        covers the amount, the attached TON covers forward_ton_amount), else refused (bounced
        back to the owner); then the same messages pay_jetton shows."""
        account = message.destination
        master, owner = self._wallets[account]
        try:
            transfer: JettonTransfer | None = parse_jetton_transfer(message.body)
        except Exception:  # a malformed body: the contract throws
            transfer = None
        value = message.value or 0
        if (transfer is None or transfer.destination is None or message.source != owner
                or self.jetton_balance(owner, master) < transfer.amount
                or value < transfer.forward_ton_amount):
            return self._refuse(account, message, exit_code=_JETTON_REFUSED)
        to_owner, response = transfer.destination, transfer.response_destination or owner
        target_wallet = jetton_wallet_address(to_owner, master)
        handover = bodies.internal_transfer(transfer.query_id, transfer.amount, owner, response,
                                            transfer.forward_ton_amount, transfer.forward_payload)
        internal = self._message(account, target_wallet, value, handover, bounce=True)
        sent = self._record(account, self._next_lt(), message, (internal,), credit=value, delta=0,
                            exit_code=0)
        self._jettons[(master, owner)] -= transfer.amount
        lt = self._next_lt()
        forward = transfer.forward_ton_amount
        notification = None if forward == 0 else self._message(
            target_wallet, to_owner, forward, bounce=False,
            body=build_notification(transfer.query_id, transfer.amount, owner, transfer.comment))
        excess = self._message(target_wallet, response, value - forward,
                               bodies.excesses(transfer.query_id), bounce=False)
        self._deploy_wallet(master, to_owner)
        self._record(target_wallet, lt, internal, (excess,) if notification is None else
                     (notification, excess), credit=value, delta=0)
        self._jettons[(master, to_owner)] = self.jetton_balance(to_owner, master) + transfer.amount
        if notification is not None:
            self._deliver(notification)
        self._execute(response, excess, (), credit=value - forward)
        return sent

    def _run_collector(self, account: TonAddress, message: TonMessage) -> TonTransaction:
        """The collector's transaction for an incoming internal message, then the transactions
        of the messages it sent."""
        value, source = message.value or 0, message.source
        assert source is not None, "a collector receives internal messages only"
        outcome = collector_logic.receive(
            self._collectors[account], sender=source, value=value, body=message.body,
            bounced=bool(message.bounced), balance_before=self.balance(account), now=epoch_s(self._clock))
        if not outcome.accepted:
            return self._refuse(account, message, exit_code=outcome.exit_code)
        lt = self._next_lt()
        sends = tuple(self._message(account, s.to, s.value, s.body, bounce=False) for s in outcome.sends)
        sent = sum(s.value for s in outcome.sends)
        tx = self._record(account, lt, message, sends, credit=value, delta=value - sent, exit_code=0)
        self._collectors[account] = outcome.state
        for out in sends:
            self._deliver(out)
        return tx

    def _refuse(self, account: TonAddress, message: TonMessage, *,
                exit_code: int | None = None) -> TonTransaction:
        """The account does not take the message: a bounceable one bounces back to its sender
        uncredited (0xffffffff + the first 256 bits of the body); a non-bounceable one is
        credited and the transaction aborted. exit_code: the contract's, when code ran."""
        value, source = message.value or 0, message.source
        if not message.bounce or source is None:
            return self._execute(account, message, (), credit=value, aborted=True, exit_code=exit_code)
        lt = self._next_lt()
        back = self._message(account, source, value, bodies.bounced(message.body), bounce=False, bounced=True)
        refused = self._record(account, lt, message, (back,), credit=value, delta=0, aborted=True,
                               exit_code=exit_code)
        self._execute(source, back, (), credit=value)
        return refused

    def _execute(self, account: TonAddress, in_msg: TonMessage, outs: tuple[TonMessage, ...], *,
                 credit: int, aborted: bool = False, exit_code: int | None = None) -> TonTransaction:
        return self._record(account, self._next_lt(), in_msg, outs, credit=credit, delta=credit,
                            aborted=aborted, exit_code=exit_code)

    def _record(self, account: TonAddress, lt: int, in_msg: TonMessage, outs: tuple[TonMessage, ...], *,
                credit: int | None, delta: int, aborted: bool = False, exit_code: int | None = None,
                activate: bool = False) -> TonTransaction:
        """activate: this transaction deploys the account (its end status is active)."""
        history = self._txs.setdefault(account, [])
        before = self.balance(account)
        status = "active" if account in self._active else ("uninit" if history else "nonexist")
        if activate:
            self._active.add(account)
        end_status = "active" if account in self._active else "uninit"
        self._balances[account] = before + delta
        prev_hash, prev_lt = (history[-1].hash, history[-1].lt) if history else (ZERO_HASH, 0)
        tx = TonTransaction(account, lt, self._hash(), epoch_s(self._clock), in_msg, outs, aborted, credit,
                            status, end_status, before, before + delta, prev_hash, prev_lt,
                            exit_code=exit_code)
        history.append(tx)
        self._pending.append(tx)
        return tx

    def _message(self, source: TonAddress, destination: TonAddress, value: int, body: Cell, *,
                 bounce: bool, bounced: bool = False, init: Cell | None = None) -> TonMessage:
        return TonMessage(self._hash(), source, destination, value, body, self._next_lt(),
                          epoch_s(self._clock), bounce, bounced, init)

    def _next_lt(self) -> int:
        self._lt += 1
        return self._lt

    def _hash(self) -> str:
        return base64.b64encode(self._ids.next("hash")).decode("ascii")

    def _block(self, seqno: int, gen_utime: int, start_lt: int, end_lt: int,
               tx_count: int) -> MasterchainBlock:
        return MasterchainBlock(seqno, gen_utime, start_lt, end_lt, self._hash(), self._hash(), tx_count)


def _check_comment(comment: str | None) -> None:
    if comment is None:
        return
    try:
        size = len(comment.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput("comment is not valid Unicode text (it contains a lone surrogate).",
                           field="comment") from None
    if size > MAX_COMMENT_BYTES:
        raise InvalidInput(f"comment must be at most {MAX_COMMENT_BYTES} bytes of UTF-8, not {size}.",
                           field="comment")


def _check_forward(forward_ton_amount: int) -> None:
    if (isinstance(forward_ton_amount, bool) or not isinstance(forward_ton_amount, int)
            or not 0 <= forward_ton_amount <= MAX_NANOTONS):
        raise InvalidInput("forward_ton_amount must be a whole number of nanotons, 0 or more.",
                           field="forward_ton_amount")
