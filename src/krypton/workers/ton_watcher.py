"""The TON watcher: pages through a receiving address's transactions from a stored cursor.

Everything TON Center returns is already in a masterchain block, hence final. The cursor
(lt, hash) is stored only after every transfer of the page was ingested, so a crash or a
provider outage re-reads the page (ingest is idempotent) instead of skipping it.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.client import PAGE, TonCenterClient
from krypton.app import ingest, matching
from krypton.app.deps import Deps
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


class TonWatcher:
    def __init__(self, deps: Deps, client: TonCenterClient, account: TonAddress,
                 masters: Mapping[TonAddress, str], *, fee_collector: bool = False) -> None:
        self.deps = deps
        self.client = client
        self.account = account
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

    async def poll(self) -> int:
        """Read every new page; returns how many new transactions were handled."""
        await self.learn_jetton_wallets()
        handled = 0
        while True:
            async with self.deps.uow(write=False) as uow:
                cursor = _decode(await uow.cursors.get(cursor_name(self.account)))
            payload = await self.client.transactions(self.account, cursor[0] if cursor else None)
            page = toncenter.parse_transactions(payload, our_address=self.account,
                                                jetton_wallets=self.jetton_wallets,
                                                fee_collector=self.fee_collector)
            fresh = toncenter.newer_than(page, cursor)
            await matching.receive_all(self.deps, [t.observed(confirmations=1)
                                                   for t in fresh if t.credited])
            for transfer in fresh:
                if transfer.kind == "counterfeit_jetton":
                    await self._reject(transfer)
            last = toncenter.cursor_after(fresh)
            if last is not None:
                async with self.deps.uow() as uow:
                    await uow.cursors.set(cursor_name(self.account), _encode(last))
                    await uow.commit()
            handled += len(fresh)
            if len(page) < PAGE or not fresh:
                return handled

    async def _reject(self, transfer: toncenter.TonTransfer) -> None:
        log.warning("counterfeit_jetton", tx=transfer.hash, source=str(transfer.source))
        await ingest.reject_transfer(self.deps, ObservedTransfer(
            Chain.TON, transfer.hash, 0, "COUNTERFEIT", transfer.amount, self.account.raw,
            transfer.comment, transfer.mc_block_seqno, 1,
            str(transfer.source) if transfer.source else None), "counterfeit_token")
