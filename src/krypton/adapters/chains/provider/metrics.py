"""Prometheus series of the chain providers: calls by endpoint and outcome, their latency,
and each endpoint's circuit state.

The circuit's half-open state is derived from the clock (health.Breaker), so a gauge set on
each change would miss it: the state is read from the live clients when Prometheus scrapes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from krypton.adapters.chains.provider.health import CircuitState

CALLS = Counter("krypton_provider_calls", "Chain provider attempts by endpoint and outcome "
                "(ok, or the error kind: timeout, connection, server, client, payload, "
                "rate_limited)", ["endpoint", "outcome"])
CALL_SECONDS = Histogram("krypton_provider_call_seconds", "How long chain provider attempts took",
                         ["endpoint"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
# The gauge's values: Grafana and the alert read 2 as "refused".
CIRCUIT_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class HasCircuits(Protocol):
    def circuits(self) -> Iterable[tuple[str, CircuitState]]: ...


class _Circuits(Collector):
    """krypton_provider_circuit_state, read from every live ProviderClient at scrape time."""

    def __init__(self) -> None:
        self._clients: weakref.WeakSet[HasCircuits] = weakref.WeakSet()

    def add(self, client: HasCircuits) -> None:
        self._clients.add(client)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "krypton_provider_circuit_state",
            "Each chain provider endpoint's circuit: 0 closed, 1 half-open, 2 open (refused)",
            labels=["endpoint"])
        seen: dict[str, int] = {}
        for client in list(self._clients):
            for name, state in client.circuits():
                # Two clients of one endpoint (a reader and a sender): the worse state shows.
                seen[name] = max(seen.get(name, 0), CIRCUIT_VALUE[state])
        for name, value in sorted(seen.items()):
            family.add_metric([name], value)
        yield family


CIRCUITS = _Circuits()
REGISTRY.register(CIRCUITS)


def observe(endpoint: str, outcome: str, seconds: float) -> None:
    CALLS.labels(endpoint, outcome).inc()
    CALL_SECONDS.labels(endpoint).observe(seconds)
