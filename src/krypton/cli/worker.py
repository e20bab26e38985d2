"""`krypton worker`: the background jobs without the API, beside `krypton serve --role api`."""

from __future__ import annotations

import asyncio
import signal

from krypton.cli import support


def worker() -> None:
    """Run the background jobs only (chain watching, expiry, projections, …), each while this
    process holds its lease: start several, one runs each job and another takes it over
    when that one dies. Needs PostgreSQL; on devnet the chains are read from the `krypton
    serve` process that hosts the devnet (KRYPTON_DEVNET_URL, default KRYPTON_PUBLIC_URL)."""
    from krypton.web import logs, sentry
    from krypton.web.api.schemas import WebhookObjects
    from krypton.workers import loops

    settings = support.settings()
    if settings.db_url.startswith("sqlite"):
        raise support.fail("krypton worker needs PostgreSQL: SQLite is the embedded "
                           "single-process default, where `krypton serve` runs the jobs itself. "
                           "Set KRYPTON_DATABASE_URL to a postgresql+asyncpg:// URL.")

    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        # This process's own series, scraped as a target of its own (README, "Metrics").
        start_http_server(settings.metrics_port, addr=settings.host)

    async def run() -> None:
        container = await support.open_container(settings, host_devnet=False)
        support.check_secret_keys(container)
        logs.configure(settings.log_level, fmt=settings.log_format)
        sentry.configure(settings)
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        running = loops.start(container, WebhookObjects(settings.public_url,
                                                         settings.network == "testnet"))
        try:
            await stop.wait()
        finally:
            await running.stop()  # gives the leases up: another worker takes over at once
            await container.close()
    asyncio.run(run())
