"""Reading query parameters the way the providers document them; each provider words its own
error response around `QueryError`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

_INTEGER = re.compile(r"-?[0-9]{1,30}")
T = TypeVar("T", bound=str)


class QueryError(ValueError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def integer(params: Mapping[str, str], name: str, default: int | None = None, *,
            minimum: int | None = None, maximum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INTEGER.fullmatch(raw):
        raise QueryError(f"{name} must be a whole number, not {raw!r}.", name)
    value = int(raw)
    if minimum is not None and value < minimum:
        raise QueryError(f"{name} must be at least {minimum}.", name)
    if maximum is not None and value > maximum:
        raise QueryError(f"{name} must be at most {maximum}.", name)
    return value


def choice(params: Mapping[str, str], name: str, options: tuple[T, ...], default: T) -> T:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    for option in options:
        if raw.lower() == option:
            return option
    raise QueryError(f"{name} must be one of {', '.join(options)}, not {raw!r}.", name)


def flag(params: Mapping[str, str], name: str) -> bool:
    raw = (params.get(name) or "false").lower()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise QueryError(f"{name} must be true or false, not {raw!r}.", name)
