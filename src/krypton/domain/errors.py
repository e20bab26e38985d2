"""Domain errors. Each carries a machine code, a sentence for people and the field at fault."""

from __future__ import annotations


class DomainError(Exception):
    code = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidAmount(DomainError):
    code = "invalid_amount"


class UnknownAsset(DomainError):
    code = "unknown_currency"


class IllegalTransition(DomainError):
    code = "illegal_transition"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class RateUnavailable(DomainError):
    """No exchange rate recent enough to price with: a temporary state, worth retrying."""

    code = "rate_unavailable"

    def __init__(self, message: str, *, field: str | None = None, retry_after: int = 30) -> None:
        super().__init__(message, field=field)
        # Seconds until a fresh rate may be known (the rate cache's refresh interval).
        self.retry_after = retry_after
