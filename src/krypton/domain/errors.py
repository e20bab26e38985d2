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
