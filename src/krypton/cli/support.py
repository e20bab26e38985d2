"""What every `krypton` command shares: settings, running a use case, clear errors."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy.exc
import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from krypton.adapters.db import faults
from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.domain.errors import DomainError
from krypton.web.logs import redact_text

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    """Print a clear error; raise the returned Exit (code 2)."""
    err.print(f"[red]Error:[/red] {escape(message)}")
    return typer.Exit(2)


def table(*columns: str) -> Table:
    """A table whose first column (an id) is never shortened: people copy ids from it."""
    result = Table()
    result.add_column(columns[0], no_wrap=True, min_width=28)
    for column in columns[1:]:
        result.add_column(column)
    return result


def _unparsable(exc: SettingsError) -> str:
    """A sentence for a setting that is not the JSON its type needs (pydantic-settings reads
    list and dict settings as JSON and names only the field)."""
    found = re.search(r'field "(\w+)"', str(exc))
    if found is None:
        return f"a setting could not be read: {exc}."
    name = found.group(1)
    field = Settings.model_fields.get(name)
    kind = "JSON"
    if field is not None:
        origin = getattr(field.annotation, "__origin__", None)
        kind = "a JSON list" if origin is list else "a JSON object" if origin is dict else "JSON"
        example = json.dumps(field.default) if field.default is not None else None
        if example:
            kind += f", e.g. '{example}'"
    return f"KRYPTON_{name.upper()} is not valid: write it as {kind}."


def settings(**overrides: Any) -> Settings:
    """Read the KRYPTON_* settings (command-line `overrides` win); a bad value is a clear error,
    not a traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for problem in exc.errors():
            name = "KRYPTON_" + "_".join(str(p) for p in problem["loc"]).upper()
            message = str(problem["msg"]).removeprefix("Value error, ")
            err.print(f"[red]Configuration error:[/red] {escape(name)}: {escape(message)}")
        raise typer.Exit(2) from None
    except SettingsError as exc:
        err.print(f"[red]Configuration error:[/red] {escape(_unparsable(exc))}")
        raise typer.Exit(2) from None


def _storage_problem(chosen: Settings, exc: BaseException) -> str | None:
    """A sentence for a database or data folder Krypton cannot use, or None (a bug)."""
    if isinstance(exc, sqlalchemy.exc.ArgumentError | sqlalchemy.exc.NoSuchModuleError):
        return (f"KRYPTON_DATABASE_URL ({redact_text(chosen.db_url)}) is not a database Krypton "
                "can use; give a postgresql+asyncpg://user@host/db URL, or none for SQLite in "
                "the data folder.")
    reason = faults.unavailable(exc)
    if reason is None and isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
    if reason is None:
        return None
    reason = redact_text(reason).rstrip(".")
    if chosen.database_url is None:
        return (f"The data folder {chosen.data_dir.resolve()} cannot hold the database: {reason}. "
                "Make it writable, free some space, or set KRYPTON_DATA_DIR to another folder.")
    return (f"Cannot use the database at {redact_text(chosen.db_url)}: {reason}. Check that it "
            "is running and reachable, or fix KRYPTON_DATABASE_URL.")


def check_data_dir(chosen: Settings) -> None:
    """With the SQLite default, the data folder must exist and take a write: a read-only or
    full folder is exit 2 with a sentence before anything starts (the database could open
    and migrate on a full disk, then every write failed)."""
    if chosen.database_url is not None:
        return
    try:
        chosen.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=chosen.data_dir) as probe:
            probe.write(b"\0" * 65_536)  # room for a few pages of the log, not one byte
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise fail(_storage_problem(chosen, exc) or str(exc)) from None


async def open_container(chosen: Settings, **options: Any) -> Container:
    """`build`, with a database or data folder that cannot be used as exit 2 and a sentence."""
    check_data_dir(chosen)
    try:
        return await build(chosen, **options)
    except DomainError as exc:  # a database refused for what it holds (a devnet's, on mainnet)
        raise fail(exc.message) from None
    except Exception as exc:
        problem = _storage_problem(chosen, exc)
        if problem is None:
            raise
        raise fail(problem) from None


def check_secret_keys(container: Container) -> None:
    """The keys that seal secrets at rest can be read (the key file is created on first use):
    a garbled or too-open key file is exit 2 with a sentence before anything starts."""
    try:
        container.secret_keys()
    except ValueError as exc:  # EnvelopeError: what to fix, never the key
        raise fail(str(exc)) from None


def run(work: Callable[[Container], Awaitable[T]]) -> T:
    """Build the container, run `work`, close it; domain errors become a clear exit 2."""
    chosen = settings()

    async def main() -> T:
        container = await open_container(chosen)
        try:
            return await work(container)
        finally:
            await container.close()
    try:
        return asyncio.run(main())
    except DomainError as exc:
        raise fail(exc.message) from None
