"""Per-endpoint health: a circuit breaker and the statistics used to rank endpoints and to
show operators what each provider is doing.

Outcomes, as the breaker and the ranking see them:
- success (2xx JSON): good for both.
- fault (timeout, connection, 5xx, 408, non-JSON): the endpoint is broken right now;
  counts towards opening the circuit.
- throttled (429 and friends): the endpoint is alive but we are too fast. The limiter
  deals with it (Retry-After, lower rate); it lowers the success rate, so a throttled
  endpoint loses its rank, but it does not open the circuit: a healthy provider that
  briefly refuses excess traffic is not broken, and opening would only pile its traffic
  onto the others.
- client error (other 4xx): the endpoint answered, our request was wrong. Neutral for the
  ranking; it proves the endpoint is alive, so it closes a half-open circuit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from krypton.adapters.chains.provider.limiter import Clock

_LATENCY_WEIGHT = 0.2  # EWMA weight of the newest sample: follows a change within ~5 calls
_WINDOW_SAMPLES = 100


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Not aiobreaker or purgatory. Both read the wall clock (datetime.now, time.time), so a test
# could not move a cooldown forward. Both turn half-open only inside a call, but endpoint
# selection needs to see a half-open endpoint before it picks one. In half-open both let
# every concurrent caller through, where we let one probe through. aiobreaker also replaces
# the error that opens the circuit with its own CircuitBreakerError, and had its last
# release in 2021.
class Breaker:
    """Opens after `threshold` consecutive faults; after `cooldown` seconds it lets exactly
    one probe through (half-open); the probe's success closes it, its fault re-opens it."""

    def __init__(self, threshold: int, cooldown: float, clock: Clock) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._open = False
        self._opened_at = 0.0
        self._probing = False
        self.consecutive_faults = 0

    @property
    def state(self) -> CircuitState:
        # Half-open is derived from the clock, so no timer task is needed.
        if not self._open:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def available(self) -> bool:
        state = self.state
        return state is CircuitState.CLOSED or (state is CircuitState.HALF_OPEN and not self._probing)

    def retry_in(self) -> float | None:
        """Seconds until this circuit admits a probe; None when it is not open."""
        if not self._open:
            return None
        return max(0.0, self._opened_at + self._cooldown - self._clock())

    def begin(self) -> bool:
        """Claim the attempt; True if it is the half-open probe (release it with end_probe)."""
        if self.state is CircuitState.HALF_OPEN:
            self._probing = True
            return True
        return False

    def end_probe(self) -> None:
        """Free the probe slot whatever happened (a cancelled probe leaves it half-open)."""
        self._probing = False

    def alive(self) -> bool:
        """The endpoint answered. Returns True if this closed an open circuit."""
        if self.state is CircuitState.OPEN:
            return False  # an answer to a request sent before it opened: let the cooldown run
        self.consecutive_faults = 0
        was_open, self._open = self._open, False
        return was_open

    def fault(self) -> bool:
        """The endpoint failed. Returns True if this opened (or re-opened) the circuit."""
        state = self.state
        if state is CircuitState.OPEN:
            return False
        self.consecutive_faults += 1
        if state is CircuitState.HALF_OPEN or self.consecutive_faults >= self._threshold:
            self._open, self._opened_at = True, self._clock()
            return True
        return False


class Health:
    """Counters, a recent success window (for ranking) and an EWMA of latency."""

    def __init__(self, clock: Clock, window: float) -> None:
        self._clock = clock
        self._window = window
        self._recent: deque[tuple[float, bool]] = deque(maxlen=_WINDOW_SAMPLES)
        self.successes = 0
        self.failures = 0
        self.throttled = 0
        self.client_errors = 0
        self.latency: float | None = None
        self.last_error: str | None = None
        self._last_error_at: float | None = None

    def success_rate(self) -> float | None:
        """Share of good outcomes in the last `window` seconds (None: no recent traffic).
        A window, not lifetime counts, so an endpoint that failed an hour ago can win again."""
        horizon = self._clock() - self._window
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()
        if not self._recent:
            return None
        return sum(ok for _, ok in self._recent) / len(self._recent)

    def record_success(self, latency: float) -> None:
        self.successes += 1
        self._recent.append((self._clock(), True))
        self._observe_latency(latency)

    def record_failure(self, error: str, latency: float | None, *, throttled: bool) -> None:
        self.failures += 1
        self.throttled += throttled
        self._recent.append((self._clock(), False))
        self._note(error)
        if latency is not None:
            self._observe_latency(latency)

    def record_client_error(self, error: str, latency: float) -> None:
        self.client_errors += 1
        self._note(error)
        self._observe_latency(latency)

    def restart_latency(self) -> None:
        """Forget latencies measured while the endpoint was broken (timeouts would keep a
        recovered endpoint ranked behind the fallback for ever)."""
        self.latency = None

    def last_error_age(self) -> float | None:
        return None if self._last_error_at is None else self._clock() - self._last_error_at

    def _observe_latency(self, seconds: float) -> None:
        if self.latency is None:
            self.latency = seconds
        else:
            self.latency += _LATENCY_WEIGHT * (seconds - self.latency)

    def _note(self, error: str) -> None:
        self.last_error = error
        self._last_error_at = self._clock()


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """One endpoint as operators see it (`as_dict()` is JSON-ready). No URL, no headers."""

    name: str
    host: str
    state: CircuitState
    successes: int
    failures: int
    throttled: int
    client_errors: int
    consecutive_failures: int
    success_rate: float | None
    latency_ms: float | None
    last_error: str | None
    last_error_age_s: float | None
    configured_rate: float
    effective_rate: float
    queued: int
    paused_for_s: float
    retry_in_s: float | None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data
