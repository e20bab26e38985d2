"""/api/v1/operator: what the platform operator sees and does across merchants.

Two ways in: the operator token (`Authorization: Bearer <KRYPTON_OPERATOR_TOKEN>`, for
scripts) or the dashboard's operator session (the cookie, with its role's permission:
`platform:read` to look, `merchants:manage` to change merchants). Not a merchant-key
router: web/app.py names it as exempt from the API-key scope check; each route's guard is
marked with its permission (`auth.permissions_of`), which the OpenAPI document shows."""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from krypton.adapters.chains.rails import ton_network
from krypton.adapters.chains.ton.address import parse
from krypton.adapters.chains.ton.reader import cursor_name
from krypton.adapters.chains.tron.reader import EVENTS_CURSOR
from krypton.app import export, merchants, provider_health, relay, webhooks
from krypton.domain import ledger
from krypton.domain.assets import ASSETS
from krypton.domain.errors import DomainError
from krypton.domain.fees import MAX_FEE_BPS, percentage
from krypton.domain.merchant import Merchant
from krypton.domain.roles import Permission
from krypton.domain.webhooks import Delivery
from krypton.web import auth, sessions
from krypton.web.api import bodies
from krypton.web.api import schemas as s
from krypton.web.api.common import After, deps_of, json, page
from krypton.web.errors import ApiError

router = APIRouter(prefix="/operator", tags=["operator"])
PageSize = Annotated[int, Query(ge=1, le=100, description="1 to 100.")]
MerchantId = Annotated[str, Path(max_length=64, description="The merchant's id (mer_…).")]


class OperatorGuard:
    """The route dependency: the operator token, or an operator session with `permission`."""

    def __init__(self, permission: Permission, tier: str = "reads") -> None:
        self.permission = permission  # read by auth.permissions_of and the OpenAPI document
        self.tier = tier
        self.__name__ = f"operator_{permission.value.replace(':', '_')}"

    async def __call__(self, request: Request) -> None:
        if request.headers.get("authorization") or not request.cookies.get(sessions.SESSION_COOKIE):
            await _token(request, self.tier)
            return
        user = await auth.session_with(request, self.permission)
        await request.app.state.limiter.check_key(f"usr:{user.user_id}", self.tier)


async def _token(request: Request, tier: str) -> None:
    token = request.app.state.settings.operator_token
    header = request.headers.get("authorization", "")
    if not header:
        raise ApiError(401, "unauthorized", "Sign in to the dashboard as the operator, or send the "
                       "operator token as 'Authorization: Bearer <token>'.",
                       headers={"WWW-Authenticate": "Bearer"})
    if token is None:
        raise ApiError(403, "operator_api_off", "The operator token is off; set "
                       "KRYPTON_OPERATOR_TOKEN to use it, or sign in to the dashboard as the operator.")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.get_secret_value().encode()):
        raise ApiError(401, "unauthorized", "Send the operator token as 'Authorization: Bearer "
                       "<token>'.", headers={"WWW-Authenticate": "Bearer"})
    await request.app.state.limiter.check_key("operator", tier)


def _guard(permission: Permission, tier: str = "reads") -> Callable[[Request], Awaitable[None]]:
    return cast(Callable[[Request], Awaitable[None]], OperatorGuard(permission, tier))


READ = [Depends(_guard(Permission.PLATFORM_READ))]
MANAGE = [Depends(_guard(Permission.MERCHANTS_MANAGE, tier="create"))]


# --- Bodies ----------------------------------------------------------------------------------


class PlatformMerchantOut(BaseModel):
    id: str = Field(description="The merchant's id (mer_…).")
    object: Literal["merchant"] = Field("merchant", description="The kind of object.")
    name: str = Field(description="Its display name.")
    fee_bps: int = Field(description="The platform fee in basis points (100 = 1 %), for invoices "
                         "created from now on.")
    fee_percentage: str = Field(description="The same fee as a percentage, e.g. \"1.5\".")
    methods: list[str] = Field(description="The payment methods it accepts.")
    ton_address: str | None = Field(description="Where its TON payments go (raw form); null: "
                                    "the platform's address.")
    ton_collector: str | None = Field(description="Its active fee-collector contract, whose own "
                                      "fee (fixed at deploy) applies to TON paid through it.")


class MerchantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: s.Text = Field(min_length=1, max_length=200, description="Display name.")
    fee_bps: int | None = Field(None, ge=0, le=MAX_FEE_BPS, description="Platform fee in basis "
                                "points (100 = 1 %); default: the platform's.")
    ton_address: s.Text | None = Field(None, max_length=100, description="Where its TON payments "
                                       "go (default: the platform's address).")


class MerchantCreated(PlatformMerchantOut):
    api_key: str = Field(description="Its first API key (every scope), shown only in this "
                         "answer: hand it to the merchant, or revoke it from their dashboard.")


class FeeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fee_bps: int = Field(ge=0, le=MAX_FEE_BPS, description="The new platform fee in basis points "
                         "(100 = 1 %); invoices created before keep theirs.")


class FeeBalanceOut(BaseModel):
    asset: s.AssetCode
    held: str = Field(description="Fees Krypton holds (ledger accounts fees:<asset>).")
    in_collectors: str = Field(description="Fees still inside merchants' fee-collector contracts "
                               "(collector_fees:*), to be flushed to the platform's wallet.")


class PlatformFeesOut(BaseModel):
    object: Literal["platform_fees"] = Field("platform_fees", description="The kind of object.")
    balances: list[FeeBalanceOut] = Field(description="One entry per asset a fee was taken in.")


class ChainCursorOut(BaseModel):
    chain: str = Field(description="ton or tron.")
    account: str = Field(description="What is watched: the platform's TON account, a merchant's "
                         "own TON account or collector, or the Tron USDT contract's events.")
    cursor: str | None = Field(description="The stored position (TON: lt:hash of the last final "
                               "transaction; Tron: block time in ms); null: not read yet.")
    read_up_to: datetime | None = Field(description="Tron: the block time the scan has reached.")
    lag_seconds: int | None = Field(description="Tron: how far that is behind now, in seconds.")


class ConsumerOut(BaseModel):
    name: str = Field(description="projections (read models), webhooks (deliveries), export "
                      "(to the event stream, when KRYPTON_NATS_URL is set).")
    behind: int = Field(description="Events not yet taken, counted up to `behind_cap`.")
    behind_cap: int = Field(description="Counting stops here: `behind` equal to it means at least.")


class ProviderOut(BaseModel):
    name: str = Field(description="The provider endpoint's configured name, e.g. toncenter-0.")
    host: str = Field(description="Its host (never the URL's path or query, never a key).")
    state: Literal["closed", "open", "half_open"] = Field(
        description="Its circuit breaker: closed (in use), open (failing: skipped until the "
                    "cooldown ends), half_open (one probe request allowed).")
    success_rate: float | None = Field(description="Share of good answers over the last minute, "
                                       "0 to 1; null: no request in that minute.")
    latency_ms: float | None = Field(description="Its recent response time (moving average), in "
                                     "milliseconds; null: not measured yet.")
    failures: int = Field(description="Failed requests since the reporting process started.")
    throttled: int = Field(description="Of those, how many the provider refused as too many "
                           "(429 and the like).")
    consecutive_failures: int = Field(description="Failures in a row, towards opening the circuit.")
    last_error: str | None = Field(description="The last error, naming the endpoint and request "
                                   "(no URL, no key); null: none yet.")
    last_error_age_s: float | None = Field(description="How long ago that error happened, in seconds.")
    updated_at: datetime = Field(description="When the process running the chain watchers last "
                                 "reported this endpoint.")
    age_seconds: int = Field(description="How long ago that was, in seconds.")
    stale: bool = Field(description="No report for over 60 s: the figures are old.")
    stale_note: str | None = Field(description="When stale, a sentence saying so; else null.")
    process: str = Field(description="Which process reported it (hostname:pid).")


class HealthOut(BaseModel):
    object: Literal["platform_health"] = Field("platform_health", description="The kind of object.")
    chains: list[ChainCursorOut] = Field(description="How far each chain watcher has got.")
    consumers: list[ConsumerOut] = Field(description="How far behind the event log each "
                                         "background consumer is.")
    providers: list[ProviderOut] = Field(description="Each chain provider endpoint's health, as "
                                         "the process running the chain watchers last reported "
                                         "it (every few seconds), by name; empty until it has.")


class FailedDeliveryOut(s.WebhookDeliveryOut):
    merchant_id: str = Field(description="The merchant whose endpoint it is (mer_…).")
    endpoint_url: str | None = Field(description="Where it is sent; null if the endpoint was deleted.")


merchant_body = bodies.builder(PlatformMerchantOut, fee_percentage=lambda m: percentage(m.fee_bps),
                               methods=lambda m: list(m.methods))
created_body = bodies.builder(MerchantCreated, api_key=bodies.GIVEN,
                              fee_percentage=lambda m: percentage(m.fee_bps),
                              methods=lambda m: list(m.methods))
_failed_body = bodies.builder(FailedDeliveryOut, endpoint_url=bodies.GIVEN,
                              status="status.value",
                              next_attempt_at=lambda d: d.next_attempt_at.isoformat()
                              if d.next_attempt_at else None,
                              created_at=lambda d: d.created_at.isoformat(),
                              finished_at=lambda d: d.finished_at.isoformat() if d.finished_at else None)

BACKLOG_CAP = 500


# --- Routes ----------------------------------------------------------------------------------


@router.get("/unmatched", response_model=s.listing(s.UnmatchedOut), dependencies=READ,
            summary="Transfers that paid no invoice, newest first (never credited elsewhere)")
async def unmatched(request: Request, limit: PageSize = 50) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        rows = await uow.unmatched.list(limit + 1)
    return page([s.unmatched_body(u) for u in rows[:limit]], len(rows) > limit)


@router.get("/merchants", response_model=s.listing(PlatformMerchantOut), dependencies=READ,
            summary="Every merchant, oldest first")
async def merchants_list(request: Request) -> JSONResponse:
    found = await merchants.list_merchants(deps_of(request))
    return page([merchant_body(m) for m in found], False)


@router.post("/merchants", response_model=MerchantCreated, status_code=201, dependencies=MANAGE,
             summary="Create a merchant and its first API key (shown once)")
async def merchant_create(body: MerchantCreate, request: Request) -> JSONResponse:
    merchant, key = await merchants.create_merchant(deps_of(request), name=body.name,
                                                    fee_bps=body.fee_bps, ton_address=body.ton_address)
    return json(created_body(merchant, api_key=key.secret), 201)


@router.patch("/merchants/{merchant_id}", response_model=PlatformMerchantOut, dependencies=MANAGE,
              summary="Change a merchant's platform fee (for invoices created from now on)")
async def merchant_fee(merchant_id: MerchantId, body: FeeChange, request: Request) -> JSONResponse:
    merchant = await merchants.set_fee(deps_of(request), merchant_id, body.fee_bps)
    return json(merchant_body(merchant))


@router.get("/fees", response_model=PlatformFeesOut, dependencies=READ,
            summary="The platform's fee balance per asset, from the ledger")
async def platform_fees(request: Request) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        held = await uow.ledger.balances("fees:")
        kept = await uow.ledger.balances("collector_fees:")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (account, asset_code), amount in held.items():
        if account == ledger.fees(asset_code):
            totals[asset_code][0] += amount
    for (_, asset_code), amount in kept.items():
        totals[asset_code][1] += amount
    rows = [{"asset": code, "held": s.fmt(h, code), "in_collectors": s.fmt(c, code)}
            for code, (h, c) in sorted(totals.items()) if code in ASSETS]
    return json({"object": "platform_fees", "balances": rows})


@router.get("/health", response_model=HealthOut, dependencies=READ,
            summary="How far the chain watchers and the event consumers have got, and the "
                    "chain providers' health")
async def health(request: Request) -> JSONResponse:
    deps = deps_of(request)
    watched = _watched(request.app.state.settings, await merchants.list_merchants(deps))
    now = deps.clock.now()
    chains: list[dict[str, Any]] = []
    consumers: list[dict[str, Any]] = []
    async with deps.uow(write=False) as uow:
        for chain, account, name in watched:
            chains.append(_cursor_row(chain, account, await uow.cursors.get(name), now))
        # The export runs only with an event stream (KRYPTON_NATS_URL): without one, its
        # backlog would only grow and mean nothing.
        exporting = (export.EXPORT,) if request.app.state.settings.nats_url else ()
        for consumer in (relay.PROJECTIONS, webhooks.RELAY, *exporting):
            position = await uow.events.consumer_position(consumer)
            behind = len(await uow.events.read(position, BACKLOG_CAP))
            consumers.append({"name": consumer, "behind": behind, "behind_cap": BACKLOG_CAP})
    providers = [_provider_row(status) for status in await provider_health.latest(deps)]
    return json({"object": "platform_health", "chains": chains, "consumers": consumers,
                 "providers": providers})


@router.get("/webhook-failures", response_model=s.listing(FailedDeliveryOut), dependencies=READ,
            summary="Webhook deliveries across merchants that failed, or are retrying after a "
                    "failure, newest first")
async def webhook_failures(request: Request, limit: PageSize = 50,
                           starting_after: After = None) -> JSONResponse:
    async with deps_of(request).uow(write=False) as uow:
        found, more = await uow.webhooks.failures_page(limit=limit, starting_after=starting_after)
        urls = {}
        for endpoint_id in {d.endpoint_id for d in found}:
            endpoint = await uow.webhooks.endpoint(endpoint_id)
            urls[endpoint_id] = endpoint.url if endpoint else None
    return page([_failed(d, urls.get(d.endpoint_id)) for d in found], more)


# --- Helpers ---------------------------------------------------------------------------------


def _failed(delivery: Delivery, url: str | None) -> dict[str, Any]:
    return _failed_body(delivery, endpoint_url=url)


def _watched(settings: Any, found: Sequence[Merchant]) -> list[tuple[str, str, str]]:
    """(chain, what is watched, its cursor's name) for every reader the workers run."""
    rows: list[tuple[str, str, str]] = []
    platform = settings.ton_receiving_address
    if platform:
        try:
            raw = parse(platform, network=ton_network(settings.network)).raw
        except (DomainError, ValueError):  # checked at start-up; never fail a status page on it
            raw = None
        if raw:
            rows.append(("ton", f"platform {raw}", cursor_name_of(raw)))
    for merchant in found:
        for raw, what in ((merchant.ton_address, "wallet"), (merchant.ton_collector, "collector")):
            if raw:
                rows.append(("ton", f"{merchant.id} {what} {raw}", cursor_name_of(raw)))
    if settings.tron_account_xpub:
        rows.append(("tron", "USDT contract events", EVENTS_CURSOR))
    return list(dict.fromkeys(rows))


def cursor_name_of(raw: str) -> str:
    """The TON reader's cursor name for a raw address (the reader's own `cursor_name`)."""
    return cursor_name(parse(raw, network="testnet"))


def _provider_row(status: provider_health.ProviderStatus) -> dict[str, Any]:
    snapshot, report = status.snapshot, status.report
    note = (f"No report for {status.age_s} s: is the worker running?" if status.stale else None)
    return {"name": snapshot.name, "host": snapshot.host, "state": snapshot.state,
            "success_rate": snapshot.success_rate, "latency_ms": snapshot.latency_ms,
            "failures": snapshot.failures, "throttled": snapshot.throttled,
            "consecutive_failures": snapshot.consecutive_failures,
            "last_error": snapshot.last_error, "last_error_age_s": snapshot.last_error_age_s,
            "updated_at": report.updated_at.isoformat(), "age_seconds": status.age_s,
            "stale": status.stale, "stale_note": note, "process": report.process}


def _cursor_row(chain: str, account: str, cursor: str | None, now: datetime) -> dict[str, Any]:
    read_up_to = lag = None
    if chain == "tron" and cursor and cursor.isdigit():
        read_up_to = datetime.fromtimestamp(int(cursor) / 1000, tz=now.tzinfo)
        lag = max(0, int((now - read_up_to).total_seconds()))
    return {"chain": chain, "account": account, "cursor": cursor,
            "read_up_to": read_up_to.isoformat() if read_up_to else None, "lag_seconds": lag}
