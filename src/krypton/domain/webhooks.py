"""Webhooks: which events an endpoint receives, how a delivery is signed (the Standard
Webhooks specification, https://www.standardwebhooks.com), when a failed one is tried
again, and when an endpoint that keeps failing is switched off.

Signing: `webhook-signature` is `v1,` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))
where the secret is the bytes behind `whsec_` + base64. `webhook-id` is the event's id,
the same on every attempt and redelivery, so a receiver drops a second copy; the
timestamp is the attempt's, so a receiver can refuse old replays.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from krypton.domain.errors import DomainError

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
ALL_EVENTS = "*"
PING = "webhook.ping"
# A receiver refuses a timestamp further than this from its clock (the specification's
# recommendation; `krypton webhooks listen` uses it).
TOLERANCE = timedelta(minutes=5)
# Delays before each retry after a failed attempt, about three days in all: quick at first
# for a blip, then hours apart for an outage. Each is stretched or shrunk by up to JITTER
# so that the retries of an endpoint that was down do not all arrive in the same second.
RETRY_DELAYS: tuple[timedelta, ...] = tuple(timedelta(seconds=s) for s in (
    5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 43200, 43200, 43200, 43200))
JITTER = 0.2
ATTEMPTS = len(RETRY_DELAYS) + 1
# An endpoint whose deliveries have all failed for this long is disabled, and its merchant
# told by a `webhook_endpoint.disabled` event.
DISABLE_AFTER = timedelta(days=3)
# After this many failures in a row, an endpoint rests (no attempt to it) for BREAKER_REST:
# a receiver that is down is not hammered by every pending delivery at once.
BREAKER_FAILURES = 5
BREAKER_REST = timedelta(seconds=30)
# How long the signing secret replaced by a rotation still signs deliveries (both signatures).
ROTATION_WINDOW = timedelta(hours=24)
MAX_ROTATION_WINDOW = timedelta(days=7)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt (or in flight)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt failed, or the endpoint answered 410 Gone


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got back: an HTTP status, or none and an error sentence."""

    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


def new_secret(random_bytes: bytes) -> str:
    if len(random_bytes) != SECRET_BYTES:
        raise ValueError(f"a signing secret is {SECRET_BYTES} random bytes")
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key behind a `whsec_…` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a signing secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers; one signature per secret (two during a rotation)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
    }


class InvalidSignature(Exception):
    """A delivery that must not be trusted; the message says why."""


def verify(secret: str, headers_: Mapping[str, str], body: bytes, now: int,
           tolerance: timedelta = TOLERANCE) -> None:
    """Check a received delivery as a receiver should: the timestamp within `tolerance` of
    `now` (both Unix seconds) and one of the `v1` signatures matching, compared in constant
    time. Raises InvalidSignature."""
    lower = {k.lower(): v for k, v in headers_.items()}
    msg_id, stamp, sigs = (lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not msg_id or not stamp or not sigs:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a whole number of seconds") from None
    if abs(now - timestamp) > tolerance.total_seconds():
        raise InvalidSignature("webhook-timestamp is too old or too far in the future (a replay?)")
    expected = signature(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, sig) for sig in sigs.split(" ") if sig.startswith("v1,")):
        raise InvalidSignature("no signature matches: wrong secret, or the body was altered")


def retry_delay(attempts: int, spread: float) -> timedelta | None:
    """How long to wait after `attempts` failed attempts, or None when none is left.
    `spread` in [0, 1) picks the jitter (the caller draws it at random)."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    return RETRY_DELAYS[attempts - 1] * (1 - JITTER + 2 * JITTER * spread)


def check_event_filter(types: Collection[str], known: Collection[str]) -> list[str]:
    """The endpoint's event filter, validated: ["*"] (every event) or known event types."""
    chosen = sorted(set(types))
    if not chosen:
        raise DomainError("events must list at least one event type, or \"*\" for all.", field="events")
    if ALL_EVENTS in chosen:
        if len(chosen) > 1:
            raise DomainError("events: \"*\" already means every event; list it alone.", field="events")
        return chosen
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise DomainError(f"Unknown event type {', '.join(repr(t[:64]) for t in unknown[:3])}; "
                          f"choose from {', '.join(sorted(known))}, or \"*\".", field="events")
    return chosen


def wants(filter_: Collection[str], event_type: str) -> bool:
    return ALL_EVENTS in filter_ or event_type in filter_


@dataclass(frozen=True, slots=True)
class Health:
    """An endpoint's failure streak, as the scheduler keeps it."""

    failures: int = 0  # in a row
    failing_since: datetime | None = None
    resting_until: datetime | None = None

    def after(self, outcome: Outcome, now: datetime) -> Health:
        if outcome.ok:
            return Health()
        failures = self.failures + 1
        resting = now + BREAKER_REST if failures >= BREAKER_FAILURES else None
        return Health(failures, self.failing_since or now, resting)

    def should_disable(self, now: datetime) -> bool:
        return self.failing_since is not None and now - self.failing_since >= DISABLE_AFTER


@dataclass(slots=True)
class Endpoint:
    """Where a merchant wants its events. `secret` and `old_secret` are sealed (encrypted)
    tokens, never the secret itself; the old one signs too until `old_secret_until`."""

    id: str
    merchant_id: str
    url: str
    events: tuple[str, ...]
    enabled: bool
    secret: str
    created_at: datetime
    description: str | None = None
    disabled_reason: str | None = None
    old_secret: str | None = None
    old_secret_until: datetime | None = None
    health: Health = Health()

    def signing_secrets(self, now: datetime) -> list[str]:
        """The sealed secrets that sign a delivery now: the current one, and during a
        rotation window the one it replaced."""
        if self.old_secret is not None and self.old_secret_until is not None and now < self.old_secret_until:
            return [self.secret, self.old_secret]
        return [self.secret]


@dataclass(slots=True)
class Delivery:
    """One event for one endpoint, and how its attempts went so far."""

    id: str
    endpoint_id: str
    merchant_id: str
    event_id: str  # sent as webhook-id: the same on every attempt and redelivery
    event_type: str
    body: bytes
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    schedule_from: int = 0  # attempts made before the last redelivery (its retries start over)
    finished_at: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None

    def record(self, outcome: Outcome, now: datetime, spread: float) -> None:
        """After an attempt: done, or when to try again, or given up."""
        self.last_status, self.last_error = outcome.status, outcome.error
        if outcome.ok:
            self.status, self.next_attempt_at, self.finished_at = DeliveryStatus.SUCCEEDED, None, now
            return
        delay = None if outcome.gone else retry_delay(self.attempts - self.schedule_from, spread)
        if delay is None:
            self.status, self.next_attempt_at, self.finished_at = DeliveryStatus.FAILED, None, now
        else:
            self.next_attempt_at = now + delay

    def redeliver(self, now: datetime) -> None:
        """Send again now, with a fresh retry schedule (and the same webhook-id)."""
        self.status, self.next_attempt_at, self.finished_at = DeliveryStatus.PENDING, now, None
        self.schedule_from = self.attempts


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP request of a delivery, as sent and as answered."""

    delivery_id: str
    number: int
    at: datetime
    request_headers: dict[str, str]
    status: int | None
    error: str | None
    response_excerpt: str
    duration_ms: int
