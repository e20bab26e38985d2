"""The signer process: a Unix socket that takes typed transfer requests and signs them.

Protocol: each frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON (at
most MAX_FRAME). A request frame is

    {"type": "transfer", "requests": [{request_id, kind, asset, amount, destination,
                                       destination_kind, ledger_entry_id[, comment]}, ...]}
    {"type": "status", "request_id": "..."}

and the answer is one frame {"results": [...]} (one result per request, in order) or
{"error": "..."}. Unknown keys, a missing key, a float or boolean amount, an unknown kind:
the request is refused as `invalid_request`, never guessed at. `comment` (optional, a string
or null) is the message's text comment, for a supplier payment only (the policy refuses it on
any other kind); without it the message says "<kind> <request_id>".

Sending, exactly once:
1. Requests pass the policy (domain/signer_policy.py) under one lock, counting what is
   queued but not yet recorded, and wait in a queue.
2. The sender takes up to the wallet's limit of queued requests, reads the wallet's seqno
   from the chain, signs ONE external for them and records it (seqno, hash, BOC, audit)
   in one transaction; only then is the BOC broadcast.
3. Before anything new is signed, every recorded-but-unresolved external is looked up on
   chain by its message hash: found → confirmed (or failed, per message); not found while
   the chain's time is before valid_until → the SAME BOC is broadcast again (the wallet's
   seqno makes a second landing impossible); not found after valid_until → it can never
   land, so the same transfers are re-signed with the current seqno. The signer never signs
   a new seqno while an older external may still land.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

from krypton.adapters.chains.ton.address import InvalidAddress, TonAddress, parse
from krypton.adapters.chains.ton.comments import build_comment
from krypton.adapters.chains.ton.wallet_messages import FORWARD_TON, JETTON_TRANSFER_TON, jetton_transfer
from krypton.adapters.signer.chain import ChainError, Landed, Refused, WalletChain
from krypton.adapters.signer.outbox import Outbox, Outgoing, TransferStatus
from krypton.adapters.signer.wallet import HotWallet, OutMessage
from krypton.app.ports import Clock
from krypton.domain import signer_policy as policy_rules
from krypton.domain.assets import USDT_TON
from krypton.domain.signer_policy import (
    DestinationKind,
    Facts,
    Policy,
    RequestKind,
    TransferRequest,
)

MAX_FRAME = 1 << 20
VALID_FOR_SECONDS = 60
REQUEST_KEYS = frozenset({"request_id", "kind", "asset", "amount", "destination", "destination_kind",
                          "ledger_entry_id"})
OPTIONAL_KEYS = frozenset({"comment"})
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# TON itself, and jettons by their master: a jetton is sent as a TEP-74 transfer to the hot
# wallet's OWN jetton wallet (found with the master's get_wallet_address), which moves it.
JETTON_MASTERS = {USDT_TON.code: USDT_TON.contract or ""}
ASSETS_SENT = frozenset({"TON", *JETTON_MASTERS})
log = structlog.get_logger()
_E = TypeVar("_E", RequestKind, DestinationKind)


class InvalidRequest(ValueError):
    """A request that does not fit the protocol; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Result:
    request_id: str
    status: str  # "broadcast" | "recorded" | "refused"
    refusal: str | None = None
    reason: str | None = None
    transfer_id: str | None = None
    seqno: int | None = None
    message_hash: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in {
            "request_id": self.request_id, "status": self.status, "refusal": self.refusal,
            "reason": self.reason, "transfer_id": self.transfer_id, "seqno": self.seqno,
            "message_hash": self.message_hash}.items() if v is not None}


@dataclass
class _Queued:
    request: TransferRequest
    done: asyncio.Future[Result]


def message_comment(request: TransferRequest) -> str:
    """The comment of a request that brings none: its kind and id, for the recipient and for
    anyone reading the chain."""
    return f"{request.kind.value} {request.request_id}"


def parse_request(data: Any, network: str) -> TransferRequest:
    """A transfer request, strictly: exactly the known keys, each of its type."""
    if not isinstance(data, dict):
        raise InvalidRequest("a request must be a JSON object")
    keys = set(data)
    if not REQUEST_KEYS <= keys <= REQUEST_KEYS | OPTIONAL_KEYS:
        missing, extra = sorted(REQUEST_KEYS - keys), sorted(keys - REQUEST_KEYS - OPTIONAL_KEYS)
        raise InvalidRequest("request keys: " + "; ".join(
            part for part in (f"missing {', '.join(missing)}" if missing else "",
                              f"unknown {', '.join(extra)}" if extra else "") if part))
    request_id, amount, entry = data["request_id"], data["amount"], data["ledger_entry_id"]
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise InvalidRequest("request_id must be 1-100 characters of A-Z a-z 0-9 _ . : -")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidRequest("amount must be a positive integer of the asset's smallest unit")
    if isinstance(entry, bool) or not isinstance(entry, int) or entry <= 0:
        raise InvalidRequest("ledger_entry_id must be a positive integer (a journal entry's id)")
    kind = _choice(RequestKind, data["kind"], "kind")
    destination_kind = _choice(DestinationKind, data["destination_kind"], "destination_kind")
    if not isinstance(data["asset"], str):
        raise InvalidRequest("asset must be an asset code such as TON")
    destination = data["destination"]
    if not isinstance(destination, str):
        raise InvalidRequest("destination must be a TON address")
    try:
        parse(destination, network="mainnet" if network == "mainnet" else "testnet")
    except InvalidAddress as exc:
        raise InvalidRequest(f"destination: {exc.message}") from None
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise InvalidRequest("comment must be a string (the message's text comment) or null")
    return TransferRequest(request_id, kind, data["asset"], amount, destination, destination_kind, entry,
                           comment)


def _choice(enum: type[_E], value: Any, name: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be one of {', '.join(e.value for e in enum)}, "
                             f"not {value!r}") from None


class Signer:
    """Policy, queue, sender and recovery around one hot wallet."""

    def __init__(self, wallet: HotWallet, chain: WalletChain, outbox: Outbox, policy: Policy, clock: Clock,
                 new_id: Callable[[str], str], *, network: str, valid_for: int = VALID_FOR_SECONDS,
                 poll_seconds: float = 1.0) -> None:
        self.wallet = wallet
        self._chain, self._outbox, self._policy = chain, outbox, policy
        self._clock, self._new_id, self._network = clock, new_id, network
        self._valid_for, self._poll = valid_for, poll_seconds
        self._lock = asyncio.Lock()
        self._jetton_wallets: dict[str, TonAddress] = {}  # asset -> the hot wallet's jetton wallet
        self._queue: list[_Queued] = []
        self._wakeup = asyncio.Event()
        # A test hook: runs after an external is recorded and before it is broadcast.
        self.after_record: Callable[[], Awaitable[None]] | None = None

    # -- requests -------------------------------------------------------------------------

    async def submit(self, requests: list[TransferRequest]) -> list[Result]:
        """Check each request; queue the allowed ones and wait until each is recorded and
        broadcast (or refused)."""
        waiting: list[asyncio.Future[Result] | Result] = []
        async with self._lock:
            for request in requests:
                decision = await self._decide(request)
                if not decision.allowed:
                    log.info("signer_refused", request_id=request.request_id, refusal=decision.refusal)
                    waiting.append(Result(request.request_id, "refused", str(decision.refusal),
                                          decision.reason))
                    continue
                done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
                self._queue.append(_Queued(request, done))
                waiting.append(done)
            self._wakeup.set()
        return [item if isinstance(item, Result) else await item for item in waiting]

    async def _decide(self, request: TransferRequest) -> policy_rules.Decision:
        if request.asset not in ASSETS_SENT and request.asset in self._policy.limits:
            return policy_rules.Decision(policy_rules.Refusal.UNKNOWN_ASSET,
                                         f"the signer sends {', '.join(sorted(ASSETS_SENT))} only for now")
        queued = [q.request for q in self._queue]
        day = self._clock.now().date().isoformat()
        facts = Facts(
            spent_today=await self._outbox.spent(request.asset, day)
            + sum(r.amount for r in queued if r.asset == request.asset),
            entry=await self._outbox.ledger_entry(request.ledger_entry_id),
            entry_used=await self._outbox.entry_used(request.ledger_entry_id)
            or any(r.ledger_entry_id == request.ledger_entry_id for r in queued),
            seen=await self._outbox.seen(request.request_id) or any(r.request_id == request.request_id
                                                                    for r in queued))
        return policy_rules.decide(self._policy, request, facts)

    # -- sending --------------------------------------------------------------------------

    async def run(self) -> None:
        """The sender: recover first, then send batches as requests arrive."""
        while True:
            try:
                if not await self.reconcile():
                    await asyncio.sleep(self._poll)  # an external is still on its way
                    continue
                if not self._queue:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll)
                    continue
                await self.send_batch()
            except ChainError as exc:
                log.warning("signer_chain_unavailable", error=str(exc))
                await asyncio.sleep(self._poll)

    async def send_batch(self) -> None:
        """Sign, record, then broadcast one external for up to the wallet's limit of requests."""
        async with self._lock:
            batch, self._queue = (self._queue[:self.wallet.max_messages],
                                  self._queue[self.wallet.max_messages:])
        if not batch:
            return
        try:
            seqno = await self._chain.seqno(self.wallet.address)
            now = self._clock.now()
            messages = [await self._message(q.request) for q in batch]
            signed = self.wallet.sign(seqno or 0, int(now.timestamp()) + self._valid_for,
                                      messages, deploy=seqno is None)
            items = [(self._new_id("stx"), q.request) for q in batch]
            await self._outbox.record(items, seqno=signed.seqno, message_hash=signed.hash, boc=signed.boc,
                                      valid_until=signed.valid_until, now=now)
        except BaseException:
            async with self._lock:  # nothing recorded: the requests wait for the next try
                self._queue[:0] = batch
            raise
        log.info("signer_signed", seqno=signed.seqno, message_hash=signed.hash, transfers=len(items))
        results = [Result(q.request.request_id, "recorded", transfer_id=tid, seqno=signed.seqno,
                          message_hash=signed.hash) for q, (tid, _) in zip(batch, items, strict=True)]
        if self.after_record is not None:
            await self.after_record()
        try:
            await self._broadcast(signed.hash, signed.boc)
            results = [Result(r.request_id, "broadcast", transfer_id=r.transfer_id, seqno=r.seqno,
                              message_hash=r.message_hash) for r in results]
        except ChainError as exc:  # recorded: reconcile sends it again
            log.warning("signer_broadcast_failed", message_hash=signed.hash, error=str(exc))
        for queued, result in zip(batch, results, strict=True):
            if not queued.done.done():
                queued.done.set_result(result)

    async def _broadcast(self, message_hash: str, boc: str) -> None:
        try:
            await self._chain.send(boc)
        except Refused as exc:
            # Refused now (a seqno already used, say) is not final: the message may have landed
            # already; reconcile decides from the chain.
            log.warning("signer_external_refused", message_hash=message_hash, error=str(exc))
        await self._outbox.mark_broadcast(message_hash, self._clock.now())

    async def _message(self, request: TransferRequest) -> OutMessage:
        destination: TonAddress = parse(request.destination,
                                        network="mainnet" if self._network == "mainnet" else "testnet")
        # A supplier's own comment (the policy allowed it) or ours; the outbox stores it, so a
        # re-signed external carries the same text.
        comment = request.comment if request.comment is not None else message_comment(request)
        if request.asset in JETTON_MASTERS:
            # To our own jetton wallet, bounceable (a refusal, too few jettons, comes back);
            # the recipient's notification carries the comment; the TON left over returns.
            body = jetton_transfer(request.amount, destination, self.wallet.address, comment,
                                   forward_ton_amount=FORWARD_TON)
            return OutMessage(await self._jetton_wallet(request.asset), JETTON_TRANSFER_TON, body,
                              bounce=True)
        # Bounceable only to contracts (EQ…); a wallet (UQ…, raw) gets a non-bounceable message,
        # which an uninitialised wallet still receives.
        bounce = request.destination.startswith(("EQ", "kQ"))
        return OutMessage(destination, request.amount, build_comment(comment), bounce=bounce)

    async def _jetton_wallet(self, asset: str) -> TonAddress:
        found = self._jetton_wallets.get(asset)
        if found is None:
            master = parse(JETTON_MASTERS[asset], network="mainnet")
            found = await self._chain.jetton_wallet(self.wallet.address, master)
            self._jetton_wallets[asset] = found
        return found

    async def _out_target(self, asset: str, destination: str, amount: int) -> tuple[str, int]:
        """(raw destination, value) of the wallet's out message that carries a transfer."""
        if asset in JETTON_MASTERS:
            return (await self._jetton_wallet(asset)).raw, JETTON_TRANSFER_TON
        return parse(destination, network="testnet").raw, amount

    # -- recovery -------------------------------------------------------------------------

    async def reconcile(self) -> bool:
        """Resolve every recorded external from the chain; True when none may still land."""
        clear = True
        for outgoing in await self._outbox.unresolved():
            if not await self._resolve(outgoing):
                clear = False
        return clear

    async def _resolve(self, outgoing: Outgoing) -> bool:
        now = self._clock.now()
        landed = await self._chain.find(outgoing.message_hash)
        if landed is not None:
            remaining = list(landed.sent)
            for transfer in outgoing.transfers:
                request = transfer.request
                raw, value = await self._out_target(request.asset, request.destination, request.amount)
                match = next((m for m in remaining if parse(m[0], network="testnet").raw == raw
                              and m[1] == value), None)
                if landed.action_failed is None and match is not None:
                    remaining.remove(match)
                    await self._outbox.settle(transfer.id, TransferStatus.CONFIRMED, now,
                                              tx_hash=landed.tx_hash)
                else:
                    why = landed.action_failed or "the wallet skipped the message (not enough balance for it)"
                    await self._outbox.settle(transfer.id, TransferStatus.FAILED, now, tx_hash=landed.tx_hash,
                                              failure=why)
            log.info("signer_landed", message_hash=outgoing.message_hash, tx_hash=landed.tx_hash)
            return True
        if await self._chain.now() < outgoing.valid_until:
            await self._broadcast(outgoing.message_hash, outgoing.boc)  # the same BOC, never a new seqno
            return False
        await self._resign(outgoing)
        return False

    async def _resign(self, outgoing: Outgoing) -> None:
        """The external expired unseen: it can never land. Sign the same transfers again with
        the wallet's current seqno, recorded before the broadcast."""
        seqno = await self._chain.seqno(self.wallet.address)
        now = self._clock.now()
        messages = [await self._message(t.request) for t in outgoing.transfers]
        signed = self.wallet.sign(seqno or 0, int(now.timestamp()) + self._valid_for, messages,
                                  deploy=seqno is None)
        await self._outbox.resign(outgoing.message_hash, outgoing.transfers, seqno=signed.seqno,
                                  message_hash=signed.hash, boc=signed.boc, valid_until=signed.valid_until,
                                  attempt=outgoing.attempt + 1, now=now)
        log.info("signer_resigned", old=outgoing.message_hash, message_hash=signed.hash, seqno=signed.seqno)
        await self._broadcast(signed.hash, signed.boc)

    async def _delivery(self, transfer: dict[str, Any]) -> dict[str, Any]:
        """For a confirmed transfer: whether its destination took it (`delivered`: True,
        False when it bounced back, None while its transaction is not on chain yet) and its
        share of the wallet transaction's fee (`network_fee`, the remainder on the first)."""
        landed = await self._chain.find(transfer["message_hash"])
        if landed is None:
            return {"delivered": None}
        index = await self._out_index(landed, transfer)
        if index is None or index >= len(landed.out_hashes):
            return {"delivered": None}
        count = max(len(landed.sent), 1)
        fee = landed.total_fees // count + (landed.total_fees % count if index == 0 else 0)
        delivery = await self._chain.delivery(landed.out_hashes[index])
        if delivery is not None and not delivery.bounced and transfer["asset"] in JETTON_MASTERS:
            # Our jetton wallet took the transfer; the jettons arrive only when the recipient's
            # jetton wallet takes its internal_transfer (the one message ours sends), a later
            # transaction that may bounce too: delivered is decided there.
            delivery = await self._chain.delivery(delivery.out_hashes[0]) if delivery.out_hashes else None
        if delivery is None:
            return {"delivered": None, "network_fee": fee}
        return {"delivered": not delivery.bounced, "bounced": delivery.bounced,
                "network_fee": fee, "delivery_tx_hash": delivery.tx_hash}

    async def _out_index(self, landed: Landed, transfer: dict[str, Any]) -> int | None:
        """Which of the wallet's out messages carried the transfer: the external's transfers
        take the matching messages in the order they were signed (several jetton transfers
        all go to our one jetton wallet with the same value, so order tells them apart)."""
        free = [(parse(d, network="testnet").raw, v, i) for i, (d, v) in enumerate(landed.sent)]
        for sibling in await self._outbox.batch(transfer["message_hash"]):
            target = await self._out_target(sibling["asset"], sibling["destination"], sibling["amount"])
            match = next((m for m in free if (m[0], m[1]) == target), None)
            if match is None:
                continue
            free.remove(match)
            if sibling["request_id"] == transfer["request_id"]:
                return match[2]
        return None

    # -- the socket -----------------------------------------------------------------------

    async def handle(self, frame: Any) -> dict[str, Any]:
        if not isinstance(frame, dict) or frame.get("type") not in ("transfer", "status"):
            return {"error": "send {\"type\": \"transfer\", \"requests\": [...]} or {\"type\": \"status\", "
                             "\"request_id\": ...}"}
        if frame["type"] == "status":
            found = await self._outbox.transfer(str(frame.get("request_id")))
            if found is None:
                return {"error": "no such request"}
            if found["status"] == TransferStatus.CONFIRMED.value:
                try:
                    found.update(await self._delivery(found))
                except ChainError as exc:  # the status stands; the delivery is asked again
                    log.warning("signer_delivery_unknown", error=str(exc))
            return {"results": [found]}
        raw = frame.get("requests")
        if set(frame) != {"type", "requests"} or not isinstance(raw, list) or not raw:
            return {"error": "a transfer frame is {\"type\": \"transfer\", \"requests\": [one or more]}"}
        parsed: list[TransferRequest | Result] = []
        for item in raw:
            try:
                parsed.append(parse_request(item, self._network))
            except InvalidRequest as exc:
                rid = item.get("request_id") if isinstance(item, dict) else None
                parsed.append(Result(str(rid), "refused", "invalid_request", str(exc)))
        valid = [p for p in parsed if isinstance(p, TransferRequest)]
        done = iter(await self.submit(valid)) if valid else iter(())
        return {"results": [(p if isinstance(p, Result) else next(done)).as_json() for p in parsed]}


async def read_frame(reader: asyncio.StreamReader) -> Any | None:
    try:
        header = await reader.readexactly(4)
    except asyncio.IncompleteReadError:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise InvalidRequest(f"a frame may hold at most {MAX_FRAME} bytes")
    return json.loads((await reader.readexactly(size)).decode("utf-8"))


def frame(payload: Any) -> bytes:
    data = json.dumps(payload, separators=(",", ":")).encode()
    return struct.pack(">I", len(data)) + data


@dataclass
class SocketServer:
    signer: Signer
    path: Path
    _server: asyncio.Server | None = field(default=None, init=False)

    async def start(self) -> None:
        """Bind the socket with mode 0600 (created under umask 077, so it is never wider)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self.path.unlink()  # a stale socket from a previous run
        old = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    request = await read_frame(reader)
                except (InvalidRequest, ValueError) as exc:
                    writer.write(frame({"error": f"unreadable frame: {exc}"}))
                    break
                if request is None:
                    break
                writer.write(frame(await self.signer.handle(request)))
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
