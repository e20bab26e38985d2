"""The TON ChainReader: pages through one account's transactions on TON Center v3.

Its cursor is the (lt, hash) of the last transaction read that is final. Finality is the
TON rule of domain/finality.py: the transaction's masterchain block at or below the
masterchain head. The head is asked for (``/masterchainInfo``) only when a transaction
names a block above the highest head seen, since the head never goes back. A transaction
that is not final yet stops the cursor: it and everything after it are read again on the
next round (ingest is idempotent), and a payment read before it was final moves on then.

Every transaction ends as toncenter.py's rule says: credited (`seen`), unmatched with a
reason (`rejected`, logged one line each), or ignored for a reason of `toncenter.Ignored`
(logged one line each), and is counted once, when the cursor passes it, in the Prometheus
counter `krypton_ton_messages_total{outcome, reason}` (/metrics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog
from prometheus_client import Counter

from krypton.adapters.chains.provider import ClientError
from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.client import PAGE, TonCenterClient
from krypton.adapters.chains.ton.toncenter import Ignored, TonTransfer, Unmatched
from krypton.app.ports import ChainRead, TransferKey, Watch
from krypton.domain import finality
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer

log = structlog.get_logger()
MESSAGES = Counter("krypton_ton_messages", "Transactions of watched TON accounts by outcome "
                   "(credited: handed to matching; unmatched; ignored) and reason", ["outcome", "reason"])

# Foreign jetton wallets whose verdict (ours of another jetton, or a forgery) is remembered;
# past this many the memory starts afresh, so a flood of forgeries cannot grow it.
VERDICTS_KEPT = 10_000
# What the unmatched record names as the asset of a jetton that is not accepted.
FOREIGN_ASSET: Mapping[Unmatched, str] = {Unmatched.UNSUPPORTED_JETTON: "UNSUPPORTED",
                                          Unmatched.COUNTERFEIT: "COUNTERFEIT"}
# Routine and frequent (every payout of our own wallet): logged at debug, the rest at info.
_ROUTINE = frozenset({Ignored.EXTERNAL, Ignored.OTHER_ACCOUNT})


def cursor_name(account: TonAddress) -> str:
    return f"ton:{account.raw}"


def _encode(cursor: toncenter.Cursor) -> str:
    return f"{cursor[0]}:{cursor[1]}"


def _decode(text: str | None) -> toncenter.Cursor | None:
    if not text:
        return None
    lt, _, tx_hash = text.partition(":")
    return int(lt), tx_hash


class TonReader:
    chain = Chain.TON.value
    rechecks = False

    def __init__(self, client: TonCenterClient, account: TonAddress,
                 masters: Mapping[TonAddress, str], *, fee_collector: bool = False) -> None:
        self.client = client
        self.account = account
        self.cursor_name = cursor_name(account)
        # A merchant's fee-collector contract: only payments it processed count (toncenter.py).
        self.fee_collector = fee_collector
        # Allow-listed jetton masters -> asset; our own wallet of each is learned from the master.
        self.masters = dict(masters)
        self.jetton_wallets: dict[TonAddress, str] = {}
        self.head = 0  # the highest masterchain seqno seen
        self._verdicts: dict[TonAddress, Unmatched] = {}

    async def learn_jetton_wallets(self) -> None:
        """Once per master: only notifications from OUR wallet of an allow-listed master count."""
        for master, asset in self.masters.items():
            if asset not in self.jetton_wallets.values():
                wallet = await self.client.jetton_wallet(self.account, master)
                self.jetton_wallets[wallet] = asset

    async def read(self, cursor: str | None, watch: Watch) -> ChainRead:
        await self.learn_jetton_wallets()
        after = _decode(cursor)
        payload = await self.client.transactions(self.account, after[0] if after else None)
        page = toncenter.parse_transactions(payload, our_address=self.account,
                                            jetton_wallets=self.jetton_wallets,
                                            fee_collector=self.fee_collector)
        fresh = toncenter.newer_than(page, after)
        await self._learn_head(fresh)
        judged = [(t, finality.ton(self.head, t.mc_block_seqno)) for t in fresh]
        # The cursor passes only final transactions: the first that is not stops it.
        settled = next((i for i, (_, f) in enumerate(judged) if not f.final), len(judged))
        seen, rejected = [], []
        for i, (t, f) in enumerate(judged):
            passed = i < settled  # logged and counted once, when the cursor passes it
            outcome: tuple[str, str]
            if t.credited:
                seen.append(t.observed(f.confirmations, final=f.final))
                outcome = ("credited", t.kind)
            elif t.kind != "ignored":
                kept = await self._unmatched(t, f, log_it=passed)
                rejected.append(kept)
                outcome = ("unmatched", kept[1])
            else:
                if passed:
                    _log_ignored(t)
                outcome = ("ignored", t.ignored.value if t.ignored else "")
            if passed:
                MESSAGES.labels(*outcome).inc()
        last = toncenter.cursor_after(t for t, _ in judged[:settled])
        return ChainRead(
            seen=seen, rejected=rejected, cursor=_encode(last) if last is not None else None,
            more=len(page) >= PAGE and bool(fresh) and settled == len(fresh), handled=settled)

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        return ChainRead()  # a transfer not final when read is read again from the cursor

    async def _learn_head(self, transfers: Sequence[TonTransfer]) -> None:
        highest = max((t.mc_block_seqno for t in transfers if t.mc_block_seqno is not None), default=0)
        if highest > self.head:
            self.head = max(self.head, await self.client.masterchain_seqno())

    async def _unmatched(self, transfer: TonTransfer, final: finality.Finality, *,
                         log_it: bool) -> tuple[ObservedTransfer, str]:
        """The record and reason for a notification that is never credited."""
        if transfer.kind == "unreadable_jetton":
            reason, asset = Unmatched.UNREADABLE_NOTIFICATION, transfer.asset or "UNKNOWN"
        else:
            assert transfer.source is not None  # a notification is an internal message
            reason = await self._foreign(transfer.source)
            asset = FOREIGN_ASSET[reason]
        if log_it:
            log.warning("ton_notification_unmatched", tx=transfer.hash, reason=reason.value,
                        source=transfer.source.raw if transfer.source else None,
                        amount=transfer.amount, detail=transfer.reason)
        return transfer.unmatched(asset, final), reason.value

    async def _foreign(self, wallet: TonAddress) -> Unmatched:
        """Our jetton wallet of a jetton we do not accept, or a forgery: the wallet must name us
        as its owner, and its master must name it as our wallet."""
        verdict = self._verdicts.get(wallet)
        if verdict is None:
            verdict = await self._verify(wallet)
            if len(self._verdicts) >= VERDICTS_KEPT:
                self._verdicts.clear()
            self._verdicts[wallet] = verdict
        return verdict

    async def _verify(self, wallet: TonAddress) -> Unmatched:
        data = await self.client.jetton_wallet_data(wallet)
        if data is None or data[0] != self.account:
            return Unmatched.COUNTERFEIT
        try:
            genuine = await self.client.jetton_wallet(self.account, data[1]) == wallet
        except (ClientError, toncenter.PayloadError):  # the "master" is no jetton master
            genuine = False
        return Unmatched.UNSUPPORTED_JETTON if genuine else Unmatched.COUNTERFEIT


def _log_ignored(transfer: TonTransfer) -> None:
    level = log.debug if transfer.ignored in _ROUTINE else log.info
    level("ton_message_ignored", tx=transfer.hash,
          reason=transfer.ignored.value if transfer.ignored else None, detail=transfer.reason)
