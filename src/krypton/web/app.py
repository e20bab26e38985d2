"""The FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from krypton import __version__
from krypton.bootstrap import Container
from krypton.web import auth, docs, errors, health, openapi, sessions, telegram
from krypton.web.api import (
    api_keys,
    invoices,
    operator,
    public,
    resources,
    shop,
    telegram_links,
    webhooks,
)
from krypton.web.api import merchant as merchant_api
from krypton.web.api import payouts as payouts_api
from krypton.web.api import stats as stats_api
from krypton.web.api import users as users_api
from krypton.web.api.schemas import WebhookObjects
from krypton.web.pages import (
    checkout,
    dashboard,
    dashboard_merchant,
    dashboard_operator,
    dashboard_users,
    refund_claim,
)
from krypton.web.pages import miniapp as miniapp_page
from krypton.web.pages import stars_shop as stars_shop_page
from krypton.web.ratelimit import Limiter
from krypton.web.request_body import GuardedBody
from krypton.web.security import SecurityHeaders
from krypton.web.telemetry import RequestTelemetry
from krypton.workers import loops

API_PREFIX = "/api/v1"
DESCRIPTION = """Take payments in TON, USDT (Tron TRC-20 and TON jetton) and Telegram Stars.

Authenticate with `Authorization: Bearer <api key>`. Amounts are decimal strings with their
currency or asset code. Lists are cursor-paginated with `limit`, `starting_after` and
`has_more`. Writes accept an `Idempotency-Key` header. Errors are
`{"error": {"code", "message", "field"}}`."""


def create_app(container: Container, *, run_workers: bool = True,
               run_devnet: bool | None = None) -> FastAPI:
    """The app; its lifespan runs the background jobs when `run_workers` (role all) and the
    devnet's block timer, in the process hosting the devnet, when `run_devnet` (default: as
    `run_workers`; role api runs the timer without the jobs)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        objects = WebhookObjects(container.settings.public_url, container.settings.network == "testnet")
        workers = loops.start(container, objects) if run_workers else None
        timers = [asyncio.create_task(run()) for run in container.background()] \
            if (run_workers if run_devnet is None else run_devnet) else []
        try:
            yield
        finally:
            for timer in timers:
                timer.cancel()
            await asyncio.gather(*timers, return_exceptions=True)
            if workers is not None:
                await workers.stop()
            await app.state.limiter.close()
            await container.stop_helpers()

    app = FastAPI(title="Krypton", version=__version__, description=DESCRIPTION,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  # Metrics are Prometheus' (/metrics). FastAPI's OpenTelemetry hooks, left on,
                  # look up the global providers on every request: 5 µs each, for nothing.
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.settings = container.settings
    app.state.deps = container.deps
    app.state.container = container
    app.state.key_cache = auth.KeyCache(container.settings.api_key_cache_seconds)
    app.state.limiter = Limiter(container.settings)
    app.state.password_hasher = container.password_hasher
    app.state.session_tokens = container.session_tokens()
    errors.install(app)
    docs.install(app, f"{API_PREFIX}/openapi.json")  # /docs from Krypton's own files
    openapi.install(app)

    # Probes first: routes are matched in order, and probes come every few seconds; behind
    # every router, /livez took 120 µs of matching for a 1 µs answer.
    @app.get("/livez", include_in_schema=False)
    async def livez() -> JSONResponse:
        """Liveness: the process answers (no database). Also the benchmark's ceiling."""
        return JSONResponse({"status": "ok"})

    # Jobs run in this process (the embedded default) or in workers beside an API-only one.
    runs_jobs = run_workers or container.settings.role == "api"

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """Every dependency; 503 (saying what is down and why) when payments cannot be taken."""
        return await health.health(container, app.state.limiter, runs_jobs=runs_jobs)

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """For load balancers: this process can serve requests (its database, its Redis)."""
        return await health.readiness(container, app.state.limiter)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # The merchant API: every route needs an API key with a scope (`auth.require`), which
    # `check_routes` verifies here, once. The public routes (payers, no key; limited per IP)
    # and the operator's (own token) are the exceptions, named as such.
    # The Stars shop's buyers: no key; their own orders need a buyer session (web/api/shop.py).
    keyless = (public.router, operator.router, sessions.router, shop.router)
    for router in (invoices.router, resources.router, webhooks.router, stats_api.router,
                   merchant_api.router, api_keys.router, users_api.router,
                   telegram_links.router, payouts_api.router, *keyless):
        app.include_router(router, prefix=API_PREFIX)
    auth.check_routes(app, public=keyless, prefix=API_PREFIX)
    app.include_router(checkout.router)  # pages for payers: no key, limited per client IP
    app.include_router(refund_claim.router)  # a payer's refund claim link: the token is its proof
    app.include_router(miniapp_page.router)  # the Telegram Mini App: initData is its proof
    app.include_router(stars_shop_page.router)  # the Stars shop (/stars, /tg/stars)
    app.include_router(dashboard.router)  # pages for merchants' users and the operator
    app.include_router(dashboard_merchant.router)  # the merchant's pages and charts
    app.include_router(dashboard_operator.router)  # API keys and the operator's pages
    app.include_router(dashboard_users.router)  # a merchant's users, for its owners
    stars_bot = container.stars_bot()
    if stars_bot is not None:
        # Telegram's updates for Stars (a bot token, or on devnet the fake Bot API's); keyless:
        # the webhook secret header is its proof.
        app.include_router(telegram.router(stars_bot, container.telegram_webhook_secret(),
                                           container.merchant_bot(), container.telegram_met()))
    devnet = container.devnet_app(app)
    if devnet is not None:
        # The local chain simulator's provider APIs and control API (devnet network only).
        app.mount("/devnet", devnet)

    # Each `add_middleware` goes outside the ones before it. The key is checked before a body
    # is read; crashes are caught around everything.
    app.add_middleware(GuardedBody, max_bytes=container.settings.max_body_bytes,
                       keyed_prefix=API_PREFIX + "/",
                       keyless_prefixes=tuple(API_PREFIX + r.prefix + "/" for r in keyless))
    app.add_middleware(errors.CatchCrashes)
    app.add_middleware(SecurityHeaders)  # a crash's 500 gets them too
    # Outermost: it sees every answer, a crash's 500 too, and every line gets the request id.
    app.add_middleware(RequestTelemetry, access_log=container.settings.access_log)
    return app
