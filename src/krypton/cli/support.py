"""What every `krypton` command shares: settings, running a use case, clear errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.domain.errors import DomainError

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    """Print a clear error; raise the returned Exit (code 2)."""
    err.print(f"[red]Error:[/red] {message}")
    return typer.Exit(2)


def table(*columns: str) -> Table:
    """A table whose first column (an id) is never shortened: people copy ids from it."""
    result = Table()
    result.add_column(columns[0], no_wrap=True, min_width=28)
    for column in columns[1:]:
        result.add_column(column)
    return result


def settings() -> Settings:
    """Read the KRYPTON_* settings; a bad value is a clear error, not a traceback."""
    try:
        return Settings()
    except ValidationError as exc:
        for problem in exc.errors():
            name = "KRYPTON_" + "_".join(str(p) for p in problem["loc"]).upper()
            err.print(f"[red]Configuration error:[/red] {name}: {problem['msg']}")
        raise typer.Exit(2) from None


def run(work: Callable[[Container], Awaitable[T]]) -> T:
    """Build the container, run `work`, close it; domain errors become a clear exit 2."""
    chosen = settings()

    async def main() -> T:
        container = await build(chosen)
        try:
            return await work(container)
        finally:
            await container.close()
    try:
        return asyncio.run(main())
    except DomainError as exc:
        raise fail(exc.message) from None
