"""`krypton backup`, `krypton backup list` and `krypton restore FILE`.

These open the database on their own rather than through the container: building the
container migrates the database, and a backup must capture it as it is (the usual moment
for one is just before an upgrade), while a restore must not find a database migrated
into the place it is about to fill."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from krypton.adapters.db import backup as backups
from krypton.adapters.db.database import Database
from krypton.cli import support
from krypton.cli.support import err, out
from krypton.config import Settings

app = typer.Typer(help="Verified backups of the database (and the secret key file).",
                  invoke_without_command=True)
T = TypeVar("T")
Dir = Annotated[Path | None, typer.Option(
    "--dir", help="Folder of the backups; default KRYPTON_BACKUP_DIR (data_dir/backups).")]


def key_file(settings: Settings) -> Path | None:
    """The key file to back up with the database; None when the keys come from
    KRYPTON_SECRET_KEY (then they live in the operator's secret store, not on disk)."""
    configured = settings.secret_key
    if configured is not None and configured.get_secret_value().strip():
        return None
    return settings.data_dir / "secret.key"


@contextmanager
def _bar(label: str) -> Iterator[backups.Progress]:
    """A progress bar that appears with the first progress (a refusal prints no bar)."""
    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err)
    task = bar.add_task(label, total=None)
    shown = False

    def advance(done: int, total: int) -> None:  # called from the copying thread
        nonlocal shown
        if not shown:
            bar.start()
            shown = True
        bar.update(task, completed=done, total=total)
    try:
        yield advance
    finally:
        if shown:
            bar.stop()


def _run(settings: Settings, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `work`; a refused or failed backup or restore, or a database that cannot be
    reached, is exit 2 with a sentence."""
    try:
        return asyncio.run(work())
    except backups.BackupError as exc:
        raise support.fail(str(exc)) from None
    except Exception as exc:
        problem = support._storage_problem(settings, exc)  # the one wording of these
        if problem is None:
            raise
        raise support.fail(problem) from None


@app.callback()
def backup(ctx: typer.Context, directory: Dir = None) -> None:
    """Back the database up now, verified (SQLite: PRAGMA integrity_check on the copy;
    PostgreSQL: pg_restore --list on the dump), to krypton-<UTC time>.sqlite3 or .pgdump;
    the secret key file is copied beside it (mode 0600). Safe while Krypton runs."""
    if ctx.invoked_subcommand is not None:
        return
    settings = support.settings()
    folder = directory or settings.backups_path

    async def work() -> backups.Backup:
        db = Database.open(settings.db_url)
        try:
            store = backups.Store(db, folder, key_file(settings))
            with _bar("Backing up") as progress:
                return await store.make(datetime.now(UTC), progress)
        finally:
            await db.dispose()
    made = _run(settings, work)
    out.print(f"Backup verified and written: {escape(str(made.path))} ({_size(made.size)}).")
    _say_key(settings, made.key)


def _say_key(settings: Settings, key: Path | None) -> None:
    if key is not None:
        out.print(f"The secret key file is beside it: {escape(str(key))} (mode 0600). It opens "
                  "the webhook secrets: keep the backups as private as the key itself.")
    elif key_file(settings) is None:
        err.print("[yellow]Note:[/yellow] the secret keys come from KRYPTON_SECRET_KEY and are not "
                  "in the backup: keep that value in your secret store, or the restored webhook "
                  "secrets cannot be opened.")
    else:
        err.print("[yellow]Note:[/yellow] there is no secret key file yet (no webhook secret was "
                  "sealed), so none was copied.")


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GiB":
            break
    return f"{scaled:.1f} {unit}"


@app.command("list")
def list_backups(directory: Dir = None) -> None:
    """The verified backups, newest first."""
    settings = support.settings()
    folder = directory or settings.backups_path
    found = backups.list_backups(folder)
    if not found:
        out.print(f"No backups in {escape(str(folder))}.")
        return
    table = support.table("file", "database", "taken (UTC)", "size", "secret key")
    for b in found:
        table.add_row(b.name, b.kind, b.taken_at.strftime("%Y-%m-%d %H:%M:%S"), _size(b.size),
                      "beside it" if b.key else "not in the backup")
    out.print(table)


def restore(file: Annotated[Path, typer.Argument(help="A krypton-….sqlite3 or ….pgdump backup.")],
            force: Annotated[bool, typer.Option(
                "--force", help="Replace the database (and key file) already there.")] = False,
            ) -> None:
    """Restore a backup into the configured database: SQLite into the data folder
    (KRYPTON_DATA_DIR, which must hold no database), PostgreSQL into KRYPTON_DATABASE_URL
    (which must be empty), unless --force. Stop Krypton first. The backup is verified
    first, then migrated to this version, and the ledger is checked."""
    settings = support.settings()
    target = key_file(settings)

    async def work() -> backups.Summary:
        with _bar("Restoring") as progress:
            return await backups.restore(settings.db_url, file, key_target=target, force=force,
                                         progress=progress)
    summary = _run(settings, work)
    beside = backups.key_path_of(file)
    _print_summary(summary, file, key_restored=target is not None and beside.is_file())
    if target is None and beside.is_file():
        err.print(f"[yellow]Note:[/yellow] the backup has a key file ({escape(str(beside))}) but "
                  "KRYPTON_SECRET_KEY is set, so it was not restored: KRYPTON_SECRET_KEY must hold "
                  "the key the webhook secrets were sealed with.")
    if not summary.balanced:
        err.print("[red]The ledger does not balance[/red] (postings per asset should sum to 0): "
                  "do not start Krypton on this database; try an older backup.")
        raise typer.Exit(1)


def _print_summary(summary: backups.Summary, file: Path, *, key_restored: bool) -> None:
    out.print(f"Restored {escape(file.name)}, migrated to {summary.revision}.")
    table = support.table("what", "count")
    for name, count in summary.counts.items():
        table.add_row(name, str(count))
    out.print(table)
    ledger = ", ".join(f"{asset} {total:+d}" for asset, total in sorted(summary.ledger.items()))
    out.print(f"Ledger: {'balanced' if summary.balanced else 'NOT balanced'}"
              + (f" ({ledger})" if ledger else " (no postings)") + ".")
    if key_restored:
        out.print("The secret key file was restored beside the database (mode 0600).")
    out.print("On start the chain watchers resume from the backup's cursors and credit what "
              "arrived since, once. Invoices created after the backup are gone: payments to "
              "them show in `krypton unmatched`.")
