"""One provider URL with its quota: TON Center with or without a key, TronGrid, the devnet."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, urlsplit

# Path segments this long are treated as secrets: some providers put the key in the path
# (https://host/<key>/...), and a provider's error body may echo the path back.
_SECRET_SEGMENT = 20


@dataclass(frozen=True, slots=True, repr=False)
class Endpoint:
    """A provider base URL, the headers it needs (API keys) and the rate it allows.

    `rate_per_second` is the quota we promise to stay under (TON Center: 1 without a key,
    10/25/100 with one); `burst` how many requests may leave back to back (1–2: providers
    count per second, a bigger burst just earns 429s). `throttle_statuses` are the statuses
    that mean "too fast" for this provider: 429 everywhere, plus 403 for TronGrid, which
    answers an over-quota caller with 403 and a 30 s penalty.

    The repr shows the name and host only; URLs and header values may carry keys.
    """

    name: str
    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    rate_per_second: float = 1.0
    burst: float = 1.0
    throttle_statuses: frozenset[int] = frozenset({429})

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an endpoint needs a name (it is what logs and stats show)")
        parts = urlsplit(self.base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"endpoint {self.name!r}: base_url must be an http(s) URL with a host")
        if not (math.isfinite(self.rate_per_second) and self.rate_per_second > 0):
            raise ValueError(f"endpoint {self.name!r}: rate_per_second must be a positive number")
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError(f"endpoint {self.name!r}: burst must be at least 1")
        # A read-only copy: the caller's dict cannot change the headers behind our back.
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    @property
    def host(self) -> str:
        """Scheme-less host[:port], safe to show to operators."""
        parts = urlsplit(self.base_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    def redact(self, text: str) -> str:
        """`text` with every secret this endpoint knows of replaced by ***."""
        for secret in sorted(self._secrets(), key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _secrets(self) -> set[str]:
        parts = urlsplit(self.base_url)
        found = {value for value in self.headers.values() if value}
        found.update(value for _, value in parse_qsl(parts.query) if value)
        found.update(seg for seg in parts.path.split("/") if len(seg) >= _SECRET_SEGMENT)
        if parts.password:
            found.add(parts.password)
        return found

    def __repr__(self) -> str:
        return f"Endpoint(name={self.name!r}, host={self.host!r}, rate_per_second={self.rate_per_second})"
