"""What every use case receives: the unit-of-work factory, the clock, ids and rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from krypton.app.ports import Clock, Ids, Rails, RateSource, Telemetry, UnitOfWorkFactory
from krypton.domain.invoice import DEFAULT_EXPIRY, DEFAULT_MONITORING


class _NoTelemetry:
    def settlement_failed(self, asset: str) -> None:
        pass


NO_TELEMETRY: Telemetry = _NoTelemetry()


@dataclass(frozen=True, slots=True)
class Deps:
    uow: UnitOfWorkFactory
    clock: Clock
    ids: Ids
    rates: RateSource
    rails: Rails
    default_expiry: timedelta = DEFAULT_EXPIRY
    monitoring_window: timedelta = DEFAULT_MONITORING
    telemetry: Telemetry = NO_TELEMETRY
