"""`krypton serve`, `krypton demo` and `krypton migrate`: run Krypton."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
from typing import Annotated, Any

import typer

from krypton.app import invoices, merchants
from krypton.bootstrap import Container
from krypton.cli import doctor, support
from krypton.cli.support import err, out
from krypton.config import Settings

GC_GEN0_THRESHOLD = 10_000  # Python's default is 700 allocations
DEMO_MERCHANT = "Demo shop"


SINGLE_PROCESS = ("SQLite is the embedded single-process default: set KRYPTON_DATABASE_URL to "
                  "a postgresql+asyncpg:// URL to run several processes.")


def serve(host: Annotated[str | None, typer.Option(help="Listen address.")] = None,
          port: Annotated[int | None, typer.Option(help="Listen port.", min=1, max=65535)] = None,
          role: Annotated[str | None, typer.Option(
              help="all: the API and the background jobs (the default); api: the API only, "
              "beside `krypton worker` processes (PostgreSQL). Default: KRYPTON_ROLE.")] = None,
          workers: Annotated[int, typer.Option(
              help="API processes (PostgreSQL only).", min=1)] = 1) -> None:
    """Run the API server, with the background jobs unless --role api."""
    import uvicorn

    # --host/--port/--role are settings like KRYPTON_HOST/PORT/ROLE: the public URL follows
    # the address if unset.
    settings = support.settings(**{k: v for k, v in (("host", host), ("port", port), ("role", role))
                                   if v is not None})
    if settings.db_url.startswith("sqlite"):
        if workers > 1:
            raise support.fail(f"--workers {workers} needs PostgreSQL; {SINGLE_PROCESS}")
        if settings.role == "api":
            raise support.fail("--role api leaves the background jobs to `krypton worker`, which "
                               f"needs PostgreSQL; {SINGLE_PROCESS}")
    if workers > 1 and settings.network == "devnet" and settings.devnet_url is None:
        raise support.fail(f"--workers {workers}: the devnet lives in one process; run one "
                           "`krypton serve` to host it, and more API processes with "
                           "KRYPTON_DEVNET_URL set to its address, or use testnet or mainnet.")
    if workers == 1:
        uvicorn.run(_app(settings), host=settings.host, port=settings.port,
                    log_level=settings.log_level, access_log=False, log_config=None)
        return

    cores = os.cpu_count() or 1
    if workers > cores:
        # Measured (bench/scale.py, 2 cores): 2 API processes 1.13-1.18x one, 3 of them
        # 0.86-0.95x: beyond the cores they only take turns on them, with PostgreSQL too.
        err.print(f"[yellow]Note:[/yellow] --workers {workers} on {cores} core(s): API processes "
                  "beyond the number of cores make the server slower, not faster.")

    async def migrated() -> None:  # once, here, rather than racing in every process
        container = await support.open_container(settings)
        await container.close()
    asyncio.run(migrated())
    # Each API process reads its settings afresh: these carry the command line's over.
    os.environ.update({"KRYPTON_HOST": settings.host, "KRYPTON_PORT": str(settings.port),
                       "KRYPTON_ROLE": settings.role, "KRYPTON_AUTO_MIGRATE": "false"})
    uvicorn.run("krypton.cli.server:api_process", factory=True, workers=workers,
                host=settings.host, port=settings.port, log_level=settings.log_level,
                access_log=False, log_config=None)


def api_process() -> Any:
    """The app of one of `serve --workers N`'s processes (uvicorn calls this in each, inside
    its running event loop: the container is built on a thread of its own)."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        app_ = thread.submit(_app, support.settings(), quiet=True).result()
    # uvicorn turned its access log off in the parent; a spawned process starts afresh.
    logging.getLogger("uvicorn.access").disabled = True
    return app_


def _app(settings: Settings, *, quiet: bool = False) -> Any:
    """Build the container and the app for this process; the process hosting the devnet
    (role all or api, unless KRYPTON_DEVNET_URL names another) runs its block timer."""
    from krypton.web import logs, sentry
    from krypton.web.app import create_app

    hosts_devnet = settings.devnet_url is None

    async def prepare() -> Container:
        container = await support.open_container(settings, host_devnet=hosts_devnet)  # migrates
        support.check_secret_keys(container)
        await container.start_devnet()  # this boot's devnet is a new chain: reset its cursors
        # Connections belong to this event loop; uvicorn runs another. Start its pool afresh.
        await container.db.dispose()
        return container
    container = asyncio.run(prepare())  # a storage problem is exit 2 with a sentence
    # From here on, one redacted JSON line per event, written by a thread (web/logs.py);
    # uvicorn's records go the same way (`log_config=None` keeps it from adding handlers).
    logs.configure(settings.log_level, fmt=settings.log_format)
    sentry.configure(settings)
    if not quiet and (tron_line := doctor.first_tron_address_line(settings)) is not None:
        out.print(tron_line, highlight=False)  # for the operator to compare with the wallet
    app_ = create_app(container, run_workers=settings.role == "all", run_devnet=hosts_devnet)
    # Everything built so far lives as long as the process: keep the collector from walking
    # it again and again, and let it run less often. (Measured: the collector took about
    # 7 % of the server's CPU under the invoice bench; this keeps most of that.)
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 10, 10)
    return app_


def migrate() -> None:
    """Apply database migrations (they also apply automatically at start-up)."""
    from krypton.adapters.db import migrate as m

    async def work(c: Container) -> str | None:
        await m.upgrade(c.db)
        return await m.current(c.db)
    revision = support.run(work)
    out.print(f"Database is at revision [bold]{revision}[/bold].")


def demo(serve_after: Annotated[bool, typer.Option("--serve/--no-serve",
                                                   help="Start the server afterwards.")] = True) -> None:
    """Embedded default: a demo merchant (the same one each time), a new API key for it and a
    sample invoice, then serve."""
    settings = support.settings()

    async def work(c: Container) -> tuple[Any, Any, Any]:
        async with c.deps.uow(write=False) as uow:
            known = next((m for m in await uow.merchants.list() if m.name == DEMO_MERCHANT), None)
        if known is None:
            merchant, key = await merchants.create_merchant(c.deps, name=DEMO_MERCHANT)
        else:  # its earlier keys were shown once and are gone from the screen: issue another
            merchant, key = known, await merchants.create_api_key(c.deps, known.id)
        created = await invoices.create_invoice(
            c.deps, merchant.id, invoices.InvoiceRequest(amount="9.99", currency="USD",
                                                         description="Demo invoice"))
        return merchant, key, created.invoice
    merchant, key, invoice = support.run(work)
    base = settings.public_url.rstrip("/")
    out.print(f"Demo merchant [bold]{merchant.id}[/bold]")
    out.print(f"API key (shown once): [bold green]{key.secret}[/bold green]")
    out.print(f"Sample invoice: [bold]{invoice.id}[/bold]  {base}/api/v1/public/invoice/{invoice.id}")
    out.print(f"Its checkout page: {base}/pay/{invoice.id}  (pay it there with the devnet buttons)")
    out.print(f"Try: curl -H 'Authorization: Bearer {key.secret}' {base}/api/v1/invoices")
    out.print(f"API docs: {base}/docs")
    if serve_after:
        serve(None, None, None, 1)
