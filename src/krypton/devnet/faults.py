"""Provider faults: what the next N requests to a provider's API suffer.

A fault is armed for a count of requests and used up one request at a time, first armed
first used, so "two 429s then one 500" is two `inject` calls. Kinds:

- "status":  answer with this HTTP status (500, 502, 429 ...) and, if given, Retry-After;
- "latency": wait this many milliseconds, then answer normally;
- "timeout": hang (the client's timeout fires first; in-process the devnet gives up with 504).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from krypton.devnet.common import InvalidInput

Provider = Literal["toncenter", "trongrid"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
FaultKind = Literal["status", "latency", "timeout"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
MAX_COUNT = 10_000
MAX_LATENCY_MS = 120_000


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    status: int | None = None
    retry_after: int | None = None  # seconds, sent as the Retry-After header
    latency_ms: int | None = None

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "status": self.status, "retry_after": self.retry_after,
                "latency_ms": self.latency_ms}


@dataclass(slots=True)
class _Armed:
    fault: Fault
    remaining: int


class Faults:
    def __init__(self) -> None:
        self._armed: dict[Provider, list[_Armed]] = {p: [] for p in PROVIDERS}

    def inject(self, provider: str, fault: Fault, count: int = 1) -> None:
        chosen = _provider(provider)
        _check(fault)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise InvalidInput(f"count must be a whole number from 1 to {MAX_COUNT}.", field="count")
        self._armed[chosen].append(_Armed(fault, count))

    def take(self, provider: Provider) -> Fault | None:
        """The fault for this request, if one is armed (and one request's worth used up)."""
        queue = self._armed[provider]
        if not queue:
            return None
        head = queue[0]
        head.remaining -= 1
        if head.remaining == 0:
            queue.pop(0)
        return head.fault

    def clear(self, provider: str | None = None) -> None:
        for chosen in PROVIDERS if provider is None else (_provider(provider),):
            self._armed[chosen].clear()

    def armed(self) -> dict[str, list[dict[str, object]]]:
        return {p: [{**a.fault.describe(), "remaining": a.remaining} for a in queue]
                for p, queue in self._armed.items()}


def fault_kind(kind: str) -> FaultKind:
    for known in FAULT_KINDS:
        if kind == known:
            return known
    raise InvalidInput(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}.", field="kind")


def _provider(provider: str) -> Provider:
    for known in PROVIDERS:
        if provider == known:
            return known
    raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}, not {provider!r}.", field="provider")


def _check(fault: Fault) -> None:
    fault_kind(fault.kind)
    if fault.kind == "status" and not (_whole(fault.status) and 400 <= (fault.status or 0) <= 599):
        raise InvalidInput("status must be an HTTP error status from 400 to 599 (e.g. 500 or 429).",
                           field="status")
    if fault.retry_after is not None and not (_whole(fault.retry_after) and fault.retry_after >= 0):
        raise InvalidInput("retry_after must be a whole number of seconds, 0 or more.", field="retry_after")
    if fault.kind == "latency" and not (_whole(fault.latency_ms) and 1 <= (fault.latency_ms or 0)
                                        <= MAX_LATENCY_MS):
        raise InvalidInput(f"latency_ms must be a whole number from 1 to {MAX_LATENCY_MS}.",
                           field="latency_ms")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
