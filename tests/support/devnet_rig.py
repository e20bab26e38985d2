"""A merchant, the devnet and the chain watchers built on it: what the watcher and fee
collector flows drive."""

from __future__ import annotations

from dataclasses import dataclass

from krypton.app import invoices
from krypton.bootstrap import Container
from krypton.devnet.devnet import Devnet
from krypton.domain.invoice import Invoice
from krypton.workers.watch import ChainWatch


@dataclass
class DevnetRig:
    container: Container
    devnet: Devnet
    watchers: ChainWatch
    merchant_id: str

    async def invoice(self, amount: str, currency: str, methods: list[str]) -> Invoice:
        body = (await invoices.create_invoice(
            self.container.deps, self.merchant_id,
            invoices.InvoiceRequest(amount=amount, currency=currency, methods=methods),
            view=lambda i: {"id": i.id})).view
        return await invoices.get_invoice(self.container.deps, self.merchant_id, body["id"])

    async def balances(self) -> dict[tuple[str, str], int]:
        """The ledger's balances, checked to sum to zero per asset."""
        async with self.container.deps.uow(write=False) as uow:
            balances = await uow.ledger.balances()
        for asset in {a for _, a in balances}:
            assert sum(v for (_, a), v in balances.items() if a == asset) == 0
        return balances
