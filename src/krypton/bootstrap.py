"""Composition root: builds the adapters and hands them to the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from krypton.adapters.chains.devnet.devnet import Devnet
from krypton.adapters.chains.rails import ChainRails
from krypton.adapters.db import migrate
from krypton.adapters.db.database import Database, UowFactory
from krypton.adapters.rates.static import StaticRates
from krypton.adapters.system import RandomIds, SystemClock
from krypton.app.deps import Deps
from krypton.app.ports import Clock
from krypton.config import Settings


@dataclass
class Container:
    settings: Settings
    db: Database
    deps: Deps
    # The in-process chain simulator when the network is "devnet".
    devnet: Devnet | None = None

    async def close(self) -> None:
        await self.deps.rails.aclose()
        await self.db.dispose()


async def build(settings: Settings, *, clock: Clock | None = None) -> Container:
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.open(settings.db_url)
    if settings.auto_migrate or db.dialect == "sqlite":
        await migrate.upgrade(db)
    ids = RandomIds()
    deps = Deps(
        uow=UowFactory(db, ids.new), clock=clock or SystemClock(), ids=ids,
        rates=StaticRates(settings.usd_rates),
        rails=ChainRails(settings.network, settings.ton_receiving_address,
                         settings.tron_account_xpub, settings.fee_collector_owner_address),
        default_expiry=timedelta(seconds=settings.invoice_expiry_seconds),
        monitoring_window=timedelta(seconds=settings.monitoring_window_seconds))
    devnet = Devnet(deps.clock.now) if settings.network == "devnet" else None
    return Container(settings, db, deps, devnet)
