"""Pure parsers for TON Center API v3 responses (``/transactions``, ``/masterchainInfo``,
``/jetton/transfers``).

`parse_transactions` turns every transaction of a page into one TonTransfer, sorted by
(lt, hash), so the cursor always moves past what was read. Only kinds "ton" and "jetton"
are payments (`TonTransfer.credited`); the others are recorded for logs and alerts:

- "ton": an internal message (source set) to our address, not bounced, value = in_msg.value.
  ``description.aborted`` alone does not refuse it (a non-bounceable transfer to an
  undeployed account is credited and aborted); it is refused only when the transaction
  also sent the value back (an out message with bounced=true to the source): "ignored".
- "jetton": a transfer_notification (op 0x7362d09c) whose source is one of OUR jetton
  wallets; asset from `jetton_wallets`, amount and comment from the body. It counts even
  if our account aborted on it: the jettons are already in our jetton wallet.
- "counterfeit_jetton": a transfer_notification from any other address. Never credited.
- "bounced": one of our own messages coming back (in_msg.bounced). Never a payment.
- "ignored": external messages (our own wallet's outgoing transactions), other accounts,
  refused transfers, non-notification messages from our jetton wallets (excesses), and
  notifications from our wallet whose body cannot be read; `reason` says which.

The comment is parsed from ``message_content.body`` (``decoded`` is often null); the
decoded text is used only when there is no readable body. Addresses in the payload (raw,
upper-case hex) are normalised to TonAddress. A response without the documented shape
raises PayloadError; a message body that cannot be decoded only loses its comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, parse
from krypton.adapters.chains.ton.cells import CellFormatError, Reader, cell_from_boc
from krypton.adapters.chains.ton.comments import text_comment
from krypton.adapters.chains.ton.jetton import (
    OP_TRANSFER_NOTIFICATION,
    MalformedNotification,
    body_op,
    parse_notification,
)
from krypton.domain.assets import TON, Chain
from krypton.domain.payment import ObservedTransfer

TransferKind = Literal["ton", "jetton", "bounced", "counterfeit_jetton", "ignored"]
CREDITED_KINDS: frozenset[TransferKind] = frozenset({"ton", "jetton"})
Cursor = tuple[int, str]
_INTEGER = re.compile(r"-?[0-9]+")


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

    @property
    def cursor(self) -> Cursor:
        return (self.lt, self.hash)

    @property
    def credited(self) -> bool:
        return self.kind in CREDITED_KINDS

    def observed(self, confirmations: int) -> ObservedTransfer:
        """The transfer for ingest; raises ValueError for kinds that are not payments."""
        if not self.credited or self.asset is None:
            raise ValueError(f"transaction {self.hash} is '{self.kind}', not a payment: {self.reason}")
        payer = self.jetton_sender if self.kind == "jetton" else self.source
        return ObservedTransfer(
            chain=Chain.TON,
            tx_id=self.hash,
            index=0,
            asset=self.asset,
            amount=self.amount,
            destination=self.account.raw,
            memo=self.comment,
            block=self.mc_block_seqno,
            confirmations=confirmations,
            sender=payer.raw if payer is not None else None,
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
            transaction_hash=_str(_get(row, "transaction_hash", where), f"{where}.transaction_hash"),
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


def _transaction(tx: Mapping[str, Any], where: str, our: TonAddress,
                 wallets: Mapping[TonAddress, str], fee_collector: bool = False) -> TonTransfer:
    head = _Head(
        account=_address_field(tx, "account", where),
        lt=_int_field(tx, "lt", where),
        hash=_str(_get(tx, "hash", where), f"{where}.hash"),
        now=_int_field(tx, "now", where),
        mc_block_seqno=_optional_int_field(tx, "mc_block_seqno", where),
    )
    record, account = head.record, head.account
    if account != our:
        return record("ignored", reason=f"transaction of another account ({account.raw})")
    msg_value = tx.get("in_msg")
    if msg_value is None:
        return record("ignored", reason="no incoming message")
    msg = _mapping(msg_value, f"{where}.in_msg")
    if msg.get("source") is None:
        return record("ignored", reason="external message (our wallet's own transaction)")
    source = _address_field(msg, "source", f"{where}.in_msg")
    destination = _address_field(msg, "destination", f"{where}.in_msg")
    value = _int_field(msg, "value", f"{where}.in_msg")
    if destination != our:
        return record("ignored", source=source, value=value,
                      reason=f"incoming message to another address ({destination.raw})")
    if msg.get("bounced") is True:
        return record("bounced", source=source, value=value, asset=TON.code, amount=value,
                      reason="one of our own messages bounced back")

    body = _boc(_content(msg).get("body"))
    op = body_op(body) if body is not None else _opcode(msg.get("opcode"))
    if fee_collector:
        refusal = _collector_refusal(tx, body, op)
        if refusal is not None:
            return record("ignored", source=source, value=value, reason=refusal)
    elif op == OP_TRANSFER_NOTIFICATION:
        return _jetton(head, source, value, body, wallets)
    if source in wallets:
        return record("ignored", source=source, value=value,
                      reason="message from our jetton wallet that is not a transfer_notification")
    if _refused(tx, source):
        return record("ignored", source=source, value=value,
                      reason="the transaction aborted and sent the value back to the sender")
    return record("ton", source=source, value=value, comment=_comment(body, msg), asset=TON.code,
                  amount=value)


def _jetton(head: _Head, source: TonAddress, value: int, body: Cell | None,
            wallets: Mapping[TonAddress, str]) -> TonTransfer:
    problem = "the notification has no readable body"
    try:
        note = parse_notification(body)
    except MalformedNotification as exc:
        note, problem = None, str(exc)
    asset = wallets.get(source)
    if asset is None:
        return head.record(
            "counterfeit_jetton", source=source, value=value,
            comment=note.comment if note else None, amount=note.amount if note else 0,
            jetton_sender=note.sender if note else None, query_id=note.query_id if note else None,
            reason=f"transfer_notification from {source.raw}, which is not one of our jetton wallets")
    if note is None:
        return head.record("ignored", source=source, value=value, reason=problem)
    return head.record("jetton", source=source, value=value, comment=note.comment, asset=asset,
                       amount=note.amount, jetton_sender=note.sender, query_id=note.query_id)


def _collector_refusal(tx: Mapping[str, Any], body: Cell | None, op: int | None) -> str | None:
    """Why the fee collector did not take this message as a payment, or None if it did."""
    description = tx.get("description")
    if isinstance(description, Mapping) and description.get("aborted") is True:
        return "the fee collector refused it (the transaction aborted): nothing was forwarded"
    if op not in (None, 0) or (op is None and body is not None and not _empty(body)):
        return "an operation for the fee collector (not a payment)"
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
