"""Telling a database that is down, full or read-only from a bug, for the callers that answer
differently: 503 with Retry-After on the API, exit 2 with a sentence at start-up.

A fault is recognised by kind, anywhere along the exception's cause chain (SQLAlchemy wraps
the driver's error; the inline SQLite engine raises sqlite3's own): the connection could not
be made or was lost, the server is shutting down or starting, the disk is full, the file is
read-only or cannot be opened. A constraint violation or a syntax error is a bug, not a fault.
"""

from __future__ import annotations

import errno
import socket
import sqlite3

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy.exc

# sqlite3.OperationalError covers faults and mistakes alike: these are the faults' messages.
_SQLITE_FAULTS = ("unable to open database file", "attempt to write a readonly database",
                  "database or disk is full", "disk i/o error", "readonly database",
                  "database is locked")
# asyncpg's classes for "the server cannot serve now" (class 57P: operator intervention,
# shutting down; 08: connection exceptions; 53: insufficient resources such as a full disk).
_PG_FAULTS = (asyncpg.exceptions.PostgresConnectionError,
              asyncpg.exceptions.OperatorInterventionError,
              asyncpg.exceptions.InsufficientResourcesError,
              asyncpg.exceptions.InterfaceError,
              asyncpg.exceptions.ConnectionDoesNotExistError)

# The storage under the database, full or read-only, or the network to its server.
_OS_FAULTS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EIO, errno.EACCES, errno.EPERM,
              errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH,
              errno.ETIMEDOUT}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return str(exc) if any(fault in text for fault in _SQLITE_FAULTS) else None
    if isinstance(exc, _PG_FAULTS):
        return f"{type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return "the connection to the database was lost"
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return "no database connection became free in time"
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return f"cannot connect: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.errno in _OS_FAULTS:
        return f"{exc.strerror or exc}"
    return None


def unavailable(exc: BaseException) -> str | None:
    """Why the database cannot serve, if `exc` says it cannot; None for any other error."""
    for link in _chain(exc):
        reason = _reason(link)
        if reason is not None:
            return reason
    return None
