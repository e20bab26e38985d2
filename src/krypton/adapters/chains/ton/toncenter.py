"""Pure parsers for TON Center API v3 responses (``/transactions``, ``/masterchainInfo``,
``/jetton/transfers``, ``/runGetMethod``).

`parse_transactions` turns every transaction of a page into one TonTransfer, sorted by
(lt, hash), so the cursor always moves past what was read.

The rule: every transaction of an account we watch ends in exactly one of three ways, and
never silently:

- credited: kind "ton" or "jetton" (`TonTransfer.credited`), handed to matching, which
  pays an invoice with it or keeps it as unmatched ("no_matching_invoice", ...);
- unmatched with a reason an operator can read (`Unmatched`): kind "unreadable_jetton"
  (a notification from our own jetton wallet whose body does not parse: no body, the
  "payload in a reference" bit without a reference, truncated cells) and kind
  "foreign_jetton" (a notification from a jetton wallet that is not ours for an accepted
  master: the reader asks the chain whether it is our wallet of another jetton,
  "unsupported_jetton", or a forgery, "counterfeit_token"); the reader logs each;
- ignored for one of the reasons in `Ignored`, the only table of them (kind "ignored",
  with `ignored` set and `reason` saying it in words).

What each kind means:

- "ton": an internal message (source set) to our address, not bounced, value above zero,
  value = in_msg.value. ``description.aborted`` alone does not refuse it (a
  non-bounceable transfer to an undeployed account is credited and aborted); it is
  refused only when the transaction also sent the value back (an out message with
  bounced=true to the source).
- "jetton": a transfer_notification (op 0x7362d09c) whose source is one of OUR jetton
  wallets; asset from `jetton_wallets`, amount and comment from the body. It counts even
  if our account aborted on it: the jettons are already in our jetton wallet.

Transaction hashes are normalised to standard padded base64 (hashes.py) before they are
keys. The comment is parsed from ``message_content.body`` (``decoded`` is often null);
the decoded text is used only when there is no readable body. Addresses in the payload
(raw, upper-case hex) are normalised to TonAddress. A response without the documented
shape raises PayloadError; a TON payment whose body cannot be decoded only loses its
comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton import hashes
from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, parse
from krypton.adapters.chains.ton.cells import CellFormatError, Reader, cell_from_boc
from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.chains.ton.jetton import (
    OP_EXCESSES,
    OP_TRANSFER_NOTIFICATION,
    MalformedNotification,
    body_op,
    parse_notification,
)
from krypton.domain.assets import TON, Chain
from krypton.domain.finality import Finality
from krypton.domain.payment import ObservedTransfer

TransferKind = Literal["ton", "jetton", "foreign_jetton", "unreadable_jetton", "ignored"]
CREDITED_KINDS: frozenset[TransferKind] = frozenset({"ton", "jetton"})
Cursor = tuple[int, str]
_INTEGER = re.compile(r"-?[0-9]+")


class Ignored(StrEnum):
    """Every reason a transaction of a watched account may be ignored: the one table.

    Anything not named here is credited or kept as unmatched (see the module doc)."""

    OTHER_ACCOUNT = "other_account"  # the indexer answered with another account's transaction
    NO_INCOMING_MESSAGE = "no_incoming_message"  # a tick-tock or other transaction with no in_msg
    EXTERNAL = "external"  # an external message: our own wallet's outgoing order
    OTHER_DESTINATION = "other_destination"  # the incoming message was for another address
    BOUNCE = "bounce"  # one of our own messages bounced back
    REFUSED = "refused"  # the transaction aborted and sent the value back to its sender
    EXCESS_REFUND = "excess_refund"  # jetton excesses (op 0xd53276db): leftover gas coming back
    ZERO_VALUE = "zero_value"  # a message carrying no TON and no jettons
    JETTON_WALLET_MESSAGE = "jetton_wallet_message"  # from our jetton wallet, not a notification
    COLLECTOR_REFUSED = "collector_refused"  # a fee collector aborted on it: nothing forwarded
    COLLECTOR_OPERATION = "collector_operation"  # an owner operation of a fee collector (top_up, ...)


IGNORED_MEANING: Mapping[Ignored, str] = {
    Ignored.OTHER_ACCOUNT: "transaction of another account",
    Ignored.NO_INCOMING_MESSAGE: "no incoming message",
    Ignored.EXTERNAL: "external message (our wallet's own transaction)",
    Ignored.OTHER_DESTINATION: "incoming message to another address",
    Ignored.BOUNCE: "one of our own messages bounced back",
    Ignored.REFUSED: "the transaction aborted and sent the value back to the sender",
    Ignored.EXCESS_REFUND: "jetton excesses: leftover gas of a jetton transfer coming back",
    Ignored.ZERO_VALUE: "a message with no value",
    Ignored.JETTON_WALLET_MESSAGE: "message from our jetton wallet that is not a transfer_notification",
    Ignored.COLLECTOR_REFUSED:
        "the fee collector refused it (the transaction aborted): nothing was forwarded",
    Ignored.COLLECTOR_OPERATION: "an operation for the fee collector (not a payment)",
}


class Unmatched(StrEnum):
    """Why a notification is kept as unmatched, never credited (the operator's words)."""

    UNREADABLE_NOTIFICATION = "unreadable_jetton_notification"
    UNSUPPORTED_JETTON = "unsupported_jetton"
    COUNTERFEIT = "counterfeit_token"


class PayloadError(ValueError):
    """The provider's response does not have the documented shape (worth an alert, not a retry)."""


@dataclass(frozen=True, slots=True)
class TonTransfer:
    """One transaction of our account as seen by TON Center; (lt, hash) is its cursor."""

    account: TonAddress
    lt: int
    hash: str
    now: int
    mc_block_seqno: int | None
    kind: TransferKind
    source: TonAddress | None
    value: int
    comment: str | None
    asset: str | None
    amount: int
    jetton_sender: TonAddress | None = None
    query_id: int | None = None
    reason: str | None = None
    ignored: Ignored | None = None

    @property
    def cursor(self) -> Cursor:
        return (self.lt, self.hash)

    @property
    def credited(self) -> bool:
        return self.kind in CREDITED_KINDS

    @property
    def block_time(self) -> datetime:
        """When the transaction ran (``now``: its block's time, unix seconds)."""
        return datetime.fromtimestamp(self.now, UTC)

    def observed(self, confirmations: int, *, final: bool = True) -> ObservedTransfer:
        """The transfer for ingest; raises ValueError for kinds that are not payments."""
        if not self.credited or self.asset is None:
            raise ValueError(f"transaction {self.hash} is '{self.kind}', not a payment: {self.reason}")
        return self._transfer(self.asset, Finality(confirmations, final))

    def unmatched(self, asset: str, finality: Finality) -> ObservedTransfer:
        """The record kept for an unmatched notification (never credited): `asset` names
        what it claimed to be ("COUNTERFEIT", "UNSUPPORTED", or our wallet's asset)."""
        if self.credited or self.kind == "ignored":
            raise ValueError(f"transaction {self.hash} is '{self.kind}', not an unmatched notification")
        return self._transfer(asset, finality)

    def _transfer(self, asset: str, finality: Finality) -> ObservedTransfer:
        # An unmatched notification names its source: the payer in its body may be made up.
        payer = self.jetton_sender if self.kind == "jetton" else self.source
        return ObservedTransfer(
            chain=Chain.TON,
            tx_id=self.hash,
            index=0,
            asset=asset,
            amount=self.amount,
            destination=self.account.raw,
            memo=self.comment,
            block=self.mc_block_seqno,
            confirmations=finality.confirmations,
            sender=payer.raw if payer is not None else None,
            final=finality.final,
            block_time=self.block_time,
        )


@dataclass(frozen=True, slots=True)
class JettonTransferHint:
    """A row of /jetton/transfers: the SENDER's jetton-wallet transaction. Discovery only:
    credit from our own wallet's transfer_notification, never from this."""

    transaction_hash: str
    transaction_lt: int
    transaction_now: int
    query_id: int
    amount: int
    source: TonAddress | None
    destination: TonAddress
    source_wallet: TonAddress
    jetton_master: TonAddress
    forward_ton_amount: int | None
    comment: str | None


def parse_transactions(
    payload: Mapping[str, Any],
    *,
    our_address: TonAddress,
    jetton_wallets: Mapping[TonAddress, str],
    fee_collector: bool = False,
) -> list[TonTransfer]:
    """Every transaction of a ``GET /transactions`` page, classified, sorted by (lt, hash)
    with duplicates (overlapping pages) removed.

    fee_collector: `our_address` is a fee-collector contract (contracts/fee_collector.fc).
    Only what the contract processed as a payment counts there: an aborted transaction
    (refused, exit 102/104) did not forward anything even if it kept the value, and a body
    with an op other than 0 (a text comment) is an owner operation such as the deploy's top_up."""
    rows = _get(payload, "transactions", "response")
    if not isinstance(rows, list):
        raise PayloadError("response.transactions is not a list")
    seen: dict[Cursor, TonTransfer] = {}
    for i, row in enumerate(rows):
        transfer = _transaction(_mapping(row, f"transactions[{i}]"), f"transactions[{i}]",
                                our_address, jetton_wallets, fee_collector)
        seen[transfer.cursor] = transfer
    return sorted(seen.values(), key=lambda t: t.cursor)


def cursor_after(transfers: Iterable[TonTransfer]) -> Cursor | None:
    """(lt, hash) of the last transfer, to persist as the watcher's position; None if empty."""
    return max((t.cursor for t in transfers), default=None)


def newer_than(transfers: Iterable[TonTransfer], cursor: Cursor | None) -> list[TonTransfer]:
    """The transfers strictly after `cursor` (pages requested from start_lt repeat it)."""
    return sorted((t for t in transfers if cursor is None or t.cursor > cursor), key=lambda t: t.cursor)


def parse_masterchain_info(payload: Mapping[str, Any]) -> int:
    """``GET /masterchainInfo`` -> the seqno of the last masterchain block (the head)."""
    last = _mapping(_get(payload, "last", "response"), "response.last")
    return _int(_get(last, "seqno", "response.last"), "response.last.seqno")


def parse_jetton_transfers(payload: Mapping[str, Any]) -> list[JettonTransferHint]:
    """``GET /jetton/transfers`` rows, for discovering incoming jetton payments."""
    rows = _get(payload, "jetton_transfers", "response")
    if not isinstance(rows, list):
        raise PayloadError("response.jetton_transfers is not a list")
    hints = []
    for i, row in enumerate(rows):
        where = f"jetton_transfers[{i}]"
        row = _mapping(row, where)
        source = row.get("source")
        hints.append(JettonTransferHint(
            transaction_hash=_hash(_get(row, "transaction_hash", where), f"{where}.transaction_hash"),
            transaction_lt=_int_field(row, "transaction_lt", where),
            transaction_now=_int_field(row, "transaction_now", where),
            query_id=_int_field(row, "query_id", where),
            amount=_int_field(row, "amount", where),
            source=None if source is None else _address(source, f"{where}.source"),
            destination=_address_field(row, "destination", where),
            source_wallet=_address_field(row, "source_wallet", where),
            jetton_master=_address_field(row, "jetton_master", where),
            forward_ton_amount=_optional_int_field(row, "forward_ton_amount", where),
            comment=_comment(_boc(row.get("forward_payload")), None),
        ))
    return hints


# -- one transaction -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Head:
    account: TonAddress
    lt: int
    hash: str
    now: int
    mc_block_seqno: int | None

    def record(self, kind: TransferKind, *, source: TonAddress | None = None, value: int = 0,
               comment: str | None = None, asset: str | None = None, amount: int = 0,
               jetton_sender: TonAddress | None = None, query_id: int | None = None,
               reason: str | None = None) -> TonTransfer:
        return TonTransfer(self.account, self.lt, self.hash, self.now, self.mc_block_seqno, kind,
                           source, value, comment, asset, amount, jetton_sender, query_id, reason)

    def ignore(self, why: Ignored, detail: str | None = None, *, source: TonAddress | None = None,
               value: int = 0) -> TonTransfer:
        reason = IGNORED_MEANING[why] + (f" ({detail})" if detail else "")
        return TonTransfer(self.account, self.lt, self.hash, self.now, self.mc_block_seqno, "ignored",
                           source, value, None, None, 0, reason=reason, ignored=why)


def _transaction(tx: Mapping[str, Any], where: str, our: TonAddress,
                 wallets: Mapping[TonAddress, str], fee_collector: bool = False) -> TonTransfer:
    head = _Head(
        account=_address_field(tx, "account", where),
        lt=_int_field(tx, "lt", where),
        hash=_hash(_get(tx, "hash", where), f"{where}.hash"),
        now=_int_field(tx, "now", where),
        mc_block_seqno=_optional_int_field(tx, "mc_block_seqno", where),
    )
    ignore, account = head.ignore, head.account
    if account != our:
        return ignore(Ignored.OTHER_ACCOUNT, account.raw)
    msg_value = tx.get("in_msg")
    if msg_value is None:
        return ignore(Ignored.NO_INCOMING_MESSAGE)
    msg = _mapping(msg_value, f"{where}.in_msg")
    if msg.get("source") is None:
        return ignore(Ignored.EXTERNAL)
    source = _address_field(msg, "source", f"{where}.in_msg")
    destination = _address_field(msg, "destination", f"{where}.in_msg")
    value = _int_field(msg, "value", f"{where}.in_msg")
    if destination != our:
        return ignore(Ignored.OTHER_DESTINATION, destination.raw, source=source, value=value)
    if msg.get("bounced") is True:
        return ignore(Ignored.BOUNCE, source=source, value=value)

    body = _boc(_content(msg).get("body"))
    op = body_op(body) if body is not None else _opcode(msg.get("opcode"))
    if fee_collector:
        refusal = _collector_refusal(tx, body, op)
        if refusal is not None:
            return ignore(refusal, source=source, value=value)
    elif op == OP_TRANSFER_NOTIFICATION:
        return _jetton(head, source, value, body, wallets)
    if op == OP_EXCESSES:
        return ignore(Ignored.EXCESS_REFUND, source=source, value=value)
    if source in wallets:
        return ignore(Ignored.JETTON_WALLET_MESSAGE, source=source, value=value)
    if _refused(tx, source):
        return ignore(Ignored.REFUSED, source=source, value=value)
    if value == 0:
        return ignore(Ignored.ZERO_VALUE, source=source)
    return head.record("ton", source=source, value=value, comment=_comment(body, msg), asset=TON.code,
                       amount=value)


def _jetton(head: _Head, source: TonAddress, value: int, body: Cell | None,
            wallets: Mapping[TonAddress, str]) -> TonTransfer:
    """A transfer_notification: credited from our wallet of an accepted master, else unmatched."""
    problem, broken = "the notification has no readable body", None
    try:
        note = parse_notification(body)
    except MalformedNotification as exc:
        note, problem, broken = None, str(exc), exc
    asset = wallets.get(source)
    if asset is None:
        return head.record(
            "foreign_jetton", source=source, value=value,
            comment=note.comment if note else None, amount=note.amount if note else 0,
            jetton_sender=note.sender if note else None, query_id=note.query_id if note else None,
            reason=f"transfer_notification from {source.raw}, which is not one of our jetton wallets")
    if note is None:
        # Our own wallet says jettons arrived but its body cannot be read: the jettons are
        # ours, so the operator must see it (amount as far as it could be read, else 0).
        amount = broken.amount if broken is not None and broken.amount is not None else 0
        return head.record(
            "unreadable_jetton", source=source, value=value, asset=asset, amount=amount,
            jetton_sender=broken.sender if broken else None,
            query_id=broken.query_id if broken else None, reason=problem)
    return head.record("jetton", source=source, value=value, comment=note.comment, asset=asset,
                       amount=note.amount, jetton_sender=note.sender, query_id=note.query_id)


def _collector_refusal(tx: Mapping[str, Any], body: Cell | None, op: int | None) -> Ignored | None:
    """Why the fee collector did not take this message as a payment, or None if it did."""
    description = tx.get("description")
    if isinstance(description, Mapping) and description.get("aborted") is True:
        return Ignored.COLLECTOR_REFUSED
    if op not in (None, 0) or (op is None and body is not None and not _empty(body)):
        return Ignored.COLLECTOR_OPERATION
    return None


def _empty(body: Cell) -> bool:
    return not body.bits and not body.refs


def _refused(tx: Mapping[str, Any], source: TonAddress) -> bool:
    """Aborted AND bounced back: only then was the incoming value not kept."""
    description = tx.get("description")
    if not isinstance(description, Mapping) or description.get("aborted") is not True:
        return False
    out_msgs = tx.get("out_msgs")
    if not isinstance(out_msgs, list):
        return False
    for out in out_msgs:
        if not isinstance(out, Mapping) or out.get("bounced") is not True:
            continue
        destination = out.get("destination")
        try:
            if isinstance(destination, str) and parse(destination, network="testnet") == source:
                return True
        except InvalidAddress:
            continue
    return False


def _comment(body: Cell | None, msg: Mapping[str, Any] | None) -> str | None:
    if body is not None:
        return text_comment(body)
    decoded = _content(msg).get("decoded") if msg is not None else None
    if isinstance(decoded, Mapping) and decoded.get("type") == "text_comment":
        comment = decoded.get("comment")
        return comment if isinstance(comment, str) else None
    return None


def _content(msg: Mapping[str, Any]) -> Mapping[str, Any]:
    content = msg.get("message_content")
    return content if isinstance(content, Mapping) else {}


def _boc(value: Any) -> Cell | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return cell_from_boc(value)
    except CellFormatError:
        return None


def _opcode(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


# -- shape checks ----------------------------------------------------------------------------


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise PayloadError(f"{where} is not an object")
    if key not in obj:
        raise PayloadError(f"{where}.{key} is missing")
    return obj[key]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where} is not an object")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{where} is not a non-empty string")
    return value


def _hash(value: Any, where: str) -> str:
    try:
        return hashes.canonical(_str(value, where))
    except hashes.InvalidHash as exc:
        raise PayloadError(f"{where}: {exc}") from None


def _int(value: Any, where: str) -> int:
    """An integer given as a JSON number or a decimal string (TON Center uses both)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    raise PayloadError(f"{where} is not an integer: {value!r}")


def _int_field(obj: Mapping[str, Any], key: str, where: str) -> int:
    return _int(_get(obj, key, where), f"{where}.{key}")


def _optional_int_field(obj: Mapping[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    return None if value is None else _int(value, f"{where}.{key}")


def _address_field(obj: Mapping[str, Any], key: str, where: str) -> TonAddress:
    return _address(_get(obj, key, where), f"{where}.{key}")


def _address(value: Any, where: str) -> TonAddress:
    # The raw form carries no network flag; the provider's network is the caller's choice.
    if not isinstance(value, str):
        raise PayloadError(f"{where} is not an address string: {value!r}")
    try:
        return parse(value, network="testnet")
    except InvalidAddress as exc:
        raise PayloadError(f"{where}: {exc.message}") from None



def parse_get_method(payload: Any, method: str) -> tuple[int, list[Mapping[str, Any]]]:
    """(exit_code, stack) of a ``POST /runGetMethod`` answer; exit code 0 means it ran.

    A contract that is not deployed cannot run anything: TON Center answers a non-zero exit
    code (or an error status, which the provider layer raises)."""
    where = f"runGetMethod {method}"
    body = _mapping(payload, where)
    exit_code = _int_field(body, "exit_code", where)
    stack = body.get("stack", [])
    if not isinstance(stack, list) or not all(isinstance(e, Mapping) for e in stack):
        raise PayloadError(f"{where}: stack is not a list of entries")
    return exit_code, stack


def stack_int(entry: Mapping[str, Any], where: str) -> int:
    """A ``{"type": "num", "value": "0x1a"}`` entry (hex, as v3 answers; "-0x…" if negative)."""
    value = entry.get("value")
    if entry.get("type") != "num" or not isinstance(value, str):
        raise PayloadError(f"{where}: expected a num entry, got {entry!r}")
    text = value.strip().lower()
    negative = text.startswith("-")
    digits = text.removeprefix("-")
    try:
        number = int(digits, 16) if digits.startswith("0x") else int(digits, 10)
    except ValueError:
        raise PayloadError(f"{where}: {value!r} is not a number") from None
    return -number if negative else number


def stack_address(entry: Mapping[str, Any], where: str) -> TonAddress:
    """A cell or slice entry holding a standard internal address (addr_std, no anycast)."""
    if entry.get("type") not in ("cell", "slice"):
        raise PayloadError(f"{where}: expected a cell or slice, got {entry.get('type')!r}")
    cell = _boc(entry.get("value"))
    if cell is None:
        raise PayloadError(f"{where}: the stack entry holds no address")
    try:
        account = Reader(cell).address(f"{where}: the address")
    except CellFormatError as exc:
        raise PayloadError(str(exc)) from None
    if account is None:
        raise PayloadError(f"{where}: the stack entry holds addr_none")
    return account


def parse_wallet_address(payload: Mapping[str, Any]) -> TonAddress:
    """The address a `get_wallet_address` runGetMethod answered (stack: one cell or slice)."""
    exit_code, stack = parse_get_method(payload, "get_wallet_address")
    if exit_code != 0:
        raise PayloadError(f"runGetMethod: get_wallet_address failed with exit code {exit_code}")
    if len(stack) != 1:
        raise PayloadError("runGetMethod: expected one stack entry")
    return stack_address(stack[0], "runGetMethod get_wallet_address")


def parse_wallet_data(payload: Mapping[str, Any]) -> tuple[TonAddress, TonAddress] | None:
    """(owner, master) from a jetton wallet's `get_wallet_data` runGetMethod answer
    (stack: balance, owner, master, wallet code); None when the method did not run, i.e. the
    account is no jetton wallet."""
    exit_code, stack = parse_get_method(payload, "get_wallet_data")
    if exit_code != 0:
        return None
    if len(stack) != 4:
        raise PayloadError(f"runGetMethod get_wallet_data: expected 4 stack entries, got {len(stack)}")
    where = "runGetMethod get_wallet_data"
    return stack_address(stack[1], where), stack_address(stack[2], where)
