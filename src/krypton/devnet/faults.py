"""Provider faults: what the next N requests to a provider's API suffer.

A fault is armed for a count of requests and used up one request at a time, first armed
first used, so "two 429s then one 500" is two `inject` calls. Kinds:

- "status":  answer with this HTTP status (500, 502, 429 ...) and, if given, Retry-After;
- "latency": wait this many milliseconds, then answer normally;
- "timeout": hang (the client's timeout fires first; in-process the devnet gives up with 504);
- "lie":     answer, but with JSON that differs from the chain (`lie`): "amount" (every
             transfer `delta` smallest units more), "omit" (incoming transfers left out),
             "stale_head" (the head `delta` blocks behind). A lie can be aimed at one `name`d
             provider of the chain (the X-Devnet-Provider header its requests carry), so one
             provider lies while the others do not; the JSON renderers apply it
             (toncenter_json.told, trongrid_json.told).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from krypton.devnet.common import InvalidInput

Provider = Literal["toncenter", "trongrid"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)
FaultKind = Literal["status", "latency", "timeout", "lie"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
LieKind = Literal["amount", "omit", "stale_head"]
LIE_KINDS: tuple[LieKind, ...] = get_args(LieKind)
DEFAULT_DELTA = {"amount": 1_000_000, "omit": 0, "stale_head": 10}
MAX_COUNT = 10_000
MAX_LATENCY_MS = 120_000


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    status: int | None = None
    retry_after: int | None = None  # seconds, sent as the Retry-After header
    latency_ms: int | None = None
    lie: LieKind | None = None  # kind "lie": what the answer gets wrong
    delta: int | None = None  # how much (amount: smallest units; stale_head: blocks)

    def describe(self) -> dict[str, object]:
        described: dict[str, object] = {"kind": self.kind, "status": self.status,
                                        "retry_after": self.retry_after, "latency_ms": self.latency_ms}
        if self.kind == "lie":
            described.update(lie=self.lie, delta=self.by)
        return described

    @property
    def by(self) -> int:
        """The lie's size: `delta`, else the default for its kind."""
        return self.delta if self.delta is not None else DEFAULT_DELTA.get(self.lie or "", 0)


@dataclass(slots=True)
class _Armed:
    fault: Fault
    remaining: int


class Faults:
    def __init__(self) -> None:
        self._armed: dict[Provider, list[_Armed]] = {p: [] for p in PROVIDERS}
        # Lies by (API, provider name or None: requests naming none); used up by the renderers.
        self._lies: dict[tuple[Provider, str | None], list[_Armed]] = {}

    def inject(self, provider: str, fault: Fault, count: int = 1, name: str | None = None) -> None:
        chosen = _provider(provider)
        _check(fault)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
            raise InvalidInput(f"count must be a whole number from 1 to {MAX_COUNT}.", field="count")
        if fault.kind == "lie":
            self._lies.setdefault((chosen, name), []).append(_Armed(fault, count))
        elif name is not None:
            raise InvalidInput("only a lie can be aimed at one named provider: status, latency and "
                               "timeout faults hit the chain's API for every provider.", field="name")
        else:
            self._armed[chosen].append(_Armed(fault, count))

    def lie(self, provider: Provider, name: str | None) -> Fault | None:
        """The lie for this answer of provider `name`, if one is armed (one answer used up)."""
        return _use(self._lies.get((provider, name), []))

    def take(self, provider: Provider) -> Fault | None:
        """The fault for this request, if one is armed (and one request's worth used up)."""
        return _use(self._armed[provider])

    def clear(self, provider: str | None = None) -> None:
        for chosen in PROVIDERS if provider is None else (_provider(provider),):
            self._armed[chosen].clear()
            for key in [k for k in self._lies if k[0] == chosen]:
                del self._lies[key]

    def armed(self) -> dict[str, list[dict[str, object]]]:
        armed: dict[str, list[dict[str, object]]] = {
            p: [{**a.fault.describe(), "remaining": a.remaining} for a in queue]
            for p, queue in self._armed.items()}
        for (provider, name), queue in self._lies.items():
            if queue:  # a named provider's lies under "<api>/<name>"
                armed.setdefault(f"{provider}/{name}" if name else provider, []).extend(
                    {**a.fault.describe(), "remaining": a.remaining} for a in queue)
        return armed


def _use(queue: list[_Armed]) -> Fault | None:
    """The first armed fault of `queue`, one request's worth used up."""
    if not queue:
        return None
    head = queue[0]
    head.remaining -= 1
    if head.remaining == 0:
        queue.pop(0)
    return head.fault


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
    if fault.kind == "lie" and fault.lie not in LIE_KINDS:
        raise InvalidInput(f"lie must be one of {', '.join(LIE_KINDS)}, not {fault.lie!r}.", field="lie")
    if fault.delta is not None and not (_whole(fault.delta) and fault.delta >= 1):
        raise InvalidInput("delta must be a whole number, 1 or more.", field="delta")
    if fault.retry_after is not None and not (_whole(fault.retry_after) and fault.retry_after >= 0):
        raise InvalidInput("retry_after must be a whole number of seconds, 0 or more.", field="retry_after")
    if fault.kind == "latency" and not (_whole(fault.latency_ms) and 1 <= (fault.latency_ms or 0)
                                        <= MAX_LATENCY_MS):
        raise InvalidInput(f"latency_ms must be a whole number from 1 to {MAX_LATENCY_MS}.",
                           field="latency_ms")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
