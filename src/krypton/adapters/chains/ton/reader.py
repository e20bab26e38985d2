"""The TON ChainReader: pages through one account's transactions on TON Center v3.

Its cursor is the (lt, hash) of the last transaction read. What it reads is final by the
TON rule in domain/finality.py, so nothing needs a second look.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.client import PAGE, TonCenterClient
from krypton.app.ports import ChainRead, TransferKey, Watch
from krypton.domain import finality
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer

log = structlog.get_logger()


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
        last = toncenter.cursor_after(fresh)
        return ChainRead(
            seen=[t.observed(finality.TON_READ.confirmations) for t in fresh if t.credited],
            rejected=[(self._counterfeit(t), "counterfeit_token") for t in fresh
                      if t.kind == "counterfeit_jetton"],
            cursor=_encode(last) if last is not None else None,
            more=len(page) >= PAGE and bool(fresh), handled=len(fresh))

    async def recheck(self, unfinished: Sequence[TransferKey]) -> ChainRead:
        return ChainRead()  # final when read

    def _counterfeit(self, transfer: toncenter.TonTransfer) -> ObservedTransfer:
        log.warning("counterfeit_jetton", tx=transfer.hash, source=str(transfer.source))
        return ObservedTransfer(
            Chain.TON, transfer.hash, 0, "COUNTERFEIT", transfer.amount, self.account.raw,
            transfer.comment, transfer.mc_block_seqno, finality.TON_READ.confirmations,
            str(transfer.source) if transfer.source else None)
