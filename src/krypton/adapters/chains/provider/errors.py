"""What can go wrong when Krypton asks a chain provider something, and whether asking
again is worth it (DESIGN.md rule 8).

Every failure is a `ProviderError` with `.retryable`, `.status` (HTTP status or None) and
`.endpoint` (the endpoint's *name*, never its URL: URLs and headers may hold API keys).

| class                     | when                                   | retryable |
|---------------------------|----------------------------------------|-----------|
| `ProviderTimeout`         | no complete answer within the timeout  | yes       |
| `ProviderConnectionError` | refused, reset, DNS, TLS, protocol     | yes       |
| `RateLimited`             | 429 (or a status the endpoint maps to throttling, e.g. TronGrid's 403) | yes |
| `ServerError`             | 5xx                                    | yes       |
| `ClientError`             | other 4xx; 408 is the one retryable    | no (408: yes) |
| `BadPayload`              | a 2xx whose body is not JSON           | yes       |
| `AllEndpointsUnavailable` | every endpoint's circuit is open       | yes       |

`BadPayload` is retryable on purpose: a non-JSON 2xx is almost always an intermediary's
page (CDN or gateway error, maintenance page, truncated body), which is transient and
endpoint-specific, so another attempt, preferably on another endpoint, usually works.
A JSON body of the wrong *shape* is the parsers' business (they raise their own errors).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar

import httpx

from krypton.adapters.chains.provider.endpoint import Endpoint

# A provider could ask for an hour; the watcher would rather fail over or fail loudly.
MAX_RETRY_AFTER = 120.0
_EXCERPT = 200


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether asking again may succeed."""

    kind: ClassVar[str] = "provider_error"
    default_retryable: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable


class ProviderTimeout(ProviderError):
    kind = "timeout"


class ProviderConnectionError(ProviderError):
    kind = "connection"


class ServerError(ProviderError):
    kind = "server_error"


class ClientError(ProviderError):
    """Our request is wrong (or unauthorised): asking again would get the same answer."""

    kind = "client_error"
    default_retryable = False


class BadPayload(ProviderError):
    kind = "bad_payload"


class RateLimited(ProviderError):
    """The provider says we are too fast; `retry_after` is its Retry-After in seconds, if any."""

    kind = "rate_limited"

    def __init__(
        self, message: str, *, endpoint: str, status: int, retry_after: float | None
    ) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.retry_after = retry_after


class AllEndpointsUnavailable(ProviderError):
    """Every endpoint's circuit is open. Retryable: the caller must keep its cursor where it
    is and try again later (`retry_in`: seconds until the first circuit lets a probe through)."""

    kind = "unavailable"

    def __init__(self, message: str, *, retry_in: float | None) -> None:
        super().__init__(message)
        self.retry_in = retry_in


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), capped at MAX_RETRY_AFTER;
    None when absent or unreadable (the caller then uses its own back-off)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds: float | None = float(text)
    except ValueError:
        seconds = _seconds_until_http_date(text, now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _seconds_until_http_date(text: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()


def error_for_status(endpoint: Endpoint, method: str, path: str, response: httpx.Response) -> ProviderError:
    """Classify a non-2xx answer. Throttling statuses are checked first, so an endpoint that
    maps 403 to throttling (TronGrid without a key) gets RateLimited, not ClientError."""
    status = response.status_code
    message = f"{endpoint.name}: {method} {path} -> HTTP {status}: {_excerpt(endpoint, response)}"
    if status in endpoint.throttle_statuses:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RateLimited(message, endpoint=endpoint.name, status=status, retry_after=retry_after)
    if status >= 500:
        return ServerError(message, endpoint=endpoint.name, status=status)
    # 408: the server gave up waiting for our request, a transport hiccup rather than a bad request.
    # 3xx: redirects are not followed, so a redirect means a misconfigured base_url.
    return ClientError(message, endpoint=endpoint.name, status=status, retryable=status == 408)


def error_for_exception(endpoint: Endpoint, method: str, path: str, exc: BaseException) -> ProviderError:
    """Classify a transport failure (httpx exception or our own overall deadline)."""
    where = f"{endpoint.name}: {method} {path}"
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return ProviderTimeout(f"{where}: timed out", endpoint=endpoint.name)
    if isinstance(exc, httpx.DecodingError):
        return BadPayload(f"{where}: undecodable body ({type(exc).__name__})", endpoint=endpoint.name)
    return ProviderConnectionError(f"{where}: {type(exc).__name__}: {endpoint.redact(str(exc))}",
                                   endpoint=endpoint.name)


def bad_payload(endpoint: Endpoint, method: str, path: str, response: httpx.Response) -> BadPayload:
    return BadPayload(
        f"{endpoint.name}: {method} {path} -> HTTP {response.status_code} with a non-JSON body: "
        f"{_excerpt(endpoint, response)}",
        endpoint=endpoint.name,
        status=response.status_code,
    )


def _excerpt(endpoint: Endpoint, response: httpx.Response) -> str:
    # Providers explain refusals in the body; some echo the request, so secrets are masked.
    text = " ".join(response.text[: _EXCERPT * 2].split())[:_EXCERPT]
    return endpoint.redact(text) or "<empty body>"
