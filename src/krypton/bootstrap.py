"""The composition root: the one place that builds adapters, for every entry point (the
server, its workers, the CLI, tests and benchmarks). Nothing else constructs a database, an
HTTP client, a chain reader, the Tron address helper or the devnet.

On the devnet network the chain readers talk to the in-process simulator through an ASGI
transport, and the server mounts the simulator's provider APIs at /devnet: the very same
client and parser code as on mainnet runs against it.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import structlog
from pytoniq_core.boc.cell import Cell
from starlette.applications import Starlette
from starlette.routing import Mount

from krypton.adapters.auth.passwords import Argon2Hasher
from krypton.adapters.auth.tokens import JwtTokens
from krypton.adapters.chains.heads import ton_head, tron_head
from krypton.adapters.chains.provider import Endpoint, EndpointStats, ProviderClient
from krypton.adapters.chains.quorum import (
    Agreement,
    QuorumTonReader,
    QuorumTronReader,
    StoredPositions,
    TonQuorum,
    tron_quorum,
)
from krypton.adapters.chains.quorum import Policy as QuorumPolicy
from krypton.adapters.chains.rails import ChainRails, ton_network
from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.chains.ton.collector_chain import TonCenterCollectors
from krypton.adapters.chains.ton.reader import TonReader
from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.prefetch import PrefetchedAddresses
from krypton.adapters.chains.tron.reader import ScanPolicy, TronReader
from krypton.adapters.chains.tron.transfer import MAINNET_USDT, NILE_USDT
from krypton.adapters.db import migrate
from krypton.adapters.db.backup import Store as BackupStore
from krypton.adapters.db.crypto_refunds import chain_refund_book
from krypton.adapters.db.database import Database, UowFactory
from krypton.adapters.db.leases import AdvisoryLeases, LocalLeases
from krypton.adapters.db.merchant_bot import bot_repo
from krypton.adapters.db.miniapp import SqlMiniAppBindings
from krypton.adapters.db.orders import order_book
from krypton.adapters.db.payouts import payout_book, sweep_book
from krypton.adapters.db.retention import pruner
from krypton.adapters.db.stars_money import SqlStarsPlanLinks, stars_book
from krypton.adapters.events.nats import NatsSink
from krypton.adapters.metrics import consumers
from krypton.adapters.metrics.business import BusinessMetrics, PrometheusTelemetry
from krypton.adapters.rates import coingecko
from krypton.adapters.rates.binance import Binance
from krypton.adapters.rates.coingecko import CoinGecko
from krypton.adapters.rates.live import LiveRates
from krypton.adapters.rates.static import StaticRates
from krypton.adapters.secrets.envelope import KeyRing, keyring_from
from krypton.adapters.signer.chain import WalletChain
from krypton.adapters.signer.client import SignerClient, SignerPort
from krypton.adapters.signer.outbox import AuditRow, Outbox
from krypton.adapters.signer.refunds import SignerRefunds
from krypton.adapters.signer.server import ASSETS_SENT as SIGNER_ASSETS
from krypton.adapters.signer.server import Signer
from krypton.adapters.signer.wallet import HotWallet
from krypton.adapters.suppliers.fragment import FragmentSupplier
from krypton.adapters.suppliers.premium_gift import (
    StoredTelegramUsers,
    TelegramPremiumGift,
    platform_stars,
)
from krypton.adapters.suppliers.senders import TonSenders
from krypton.adapters.system import RandomIds, SystemClock
from krypton.adapters.telegram.bot_api import BotApi
from krypton.adapters.telegram.merchant_api import MerchantBotApi
from krypton.adapters.telegram.updates import Met, Poller, UpdateHandler, WebhookRegistration
from krypton.adapters.tonconnect.keys import chain_public_key
from krypton.adapters.webhooks import ssrf
from krypton.adapters.webhooks.sender import WebhookSender
from krypton.app import devnet_genesis, merchant_bot, retention, stars
from krypton.app import shop as shop_use
from krypton.app import webhooks as webhook_use
from krypton.app.chain_time import ChainHead
from krypton.app.deps import Deps
from krypton.app.fee_sweeps import SweepKit
from krypton.app.payouts import Batching, PayoutKit
from krypton.app.ports import (
    ChainReader,
    Clock,
    CollectorPlan,
    Leases,
    ProviderSnapshot,
    RateSource,
    StarsSupplier,
    UnitOfWork,
)
from krypton.app.refunds import ChainRail, RefundKit
from krypton.app.shop import ShopKit
from krypton.app.stars_book import StarsBooks
from krypton.config import Settings
from krypton.devnet.common import DevnetError, InvalidInput
from krypton.devnet.control_api import send_payment, stars_routes
from krypton.devnet.devnet import Devnet
from krypton.devnet.fragment_api import FakeFragment
from krypton.devnet.http import create_devnet_app
from krypton.devnet.rates_api import FakeRates, create_rates_app, with_rates
from krypton.devnet.requests import refused
from krypton.devnet.telegram_api import FakeBotApi, webhook
from krypton.devnet.timer import run_block_timer
from krypton.domain.assets import USDT_TON
from krypton.domain.errors import DomainError
from krypton.domain.signer_policy import Limits, Policy

DEVNET_BASE = "http://devnet"
# The devnet's fake Bot API's token: public, it reaches no real bot.
DEVNET_BOT_TOKEN = "7000000001:KRYPTON-devnet-bot-token-0000000000"
DEVNET_SIGNER_NANOTONS = 100_000 * 10**9  # the hot wallet's genesis balance on the devnet
DEVNET_SIGNER_USDT = 100_000 * 10**6  # and its USDT on TON
log = structlog.get_logger()


@dataclass
class ChainAdapters:
    """What the chain workers read: the platform's readers, a factory for the readers of
    merchants' own TON accounts, and the fee-collector contracts' reader."""

    ton: TonReader | QuorumTonReader | None
    tron: TronReader | QuorumTronReader | None
    collectors: TonCenterCollectors
    _ton_client: TonCenterClient
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Several providers of a chain (KRYPTON_*_PROVIDERS): merchants' readers, and the other
    # providers and the agreement for the operator's page and /healthz.
    _ton_quorum: TonQuorum | None = None
    _quorum_providers: list[ProviderClient] = field(default_factory=list)
    _books: list[Agreement] = field(default_factory=list)

    async def heads(self) -> dict[str, ChainHead]:
        """Each watched chain's newest block now (TON: masterchain seqno) and its time, for the
        watcher's lag and the clock skew; a chain whose providers do not answer is left out."""
        heads: dict[str, ChainHead] = {}
        # Under a quorum, the head the healthy providers agree on, not the first one's word.
        ton = self._ton_quorum.head if self._ton_quorum is not None else partial(ton_head, self._ton_client)
        tron = (None if self.tron is None else self.tron.head if isinstance(self.tron, QuorumTronReader)
                else partial(tron_head, self.tron.client))
        calls = (("ton", ton if self.ton is not None else None), ("tron", tron))
        for chain, head in calls:
            if head is None:
                continue
            try:
                heads[chain] = await head()
            except Exception as exc:  # the chain job's own calls report provider trouble
                log.debug("chain_head_unknown", chain=chain, error=type(exc).__name__)
        return heads

    def merchant_ton(self, raw: str, *, fee_collector: bool) -> ChainReader:
        """A reader for a merchant's TON wallet or fee-collector contract (raw address)."""
        # No jettons at a collector: it cannot pass them on (the deploy docs say so).
        masters = {} if fee_collector or self.ton is None else self.ton.masters
        if self._ton_quorum is not None:
            return self._ton_quorum.reader(parse(raw, network="testnet"), masters,
                                           fee_collector=fee_collector)
        return TonReader(self._ton_client, parse(raw, network="testnet"), masters,
                         fee_collector=fee_collector)

    def provider_stats(self) -> list[ProviderSnapshot]:
        """This process's TON and Tron provider endpoints as they stand (the chain job's
        readers, merchants' accounts and collectors share them), for the operator's page.
        The Tron provider only while a Tron reader uses it: idle, it would only show zeros.
        (The rate sources' providers belong to the container, not to the chain adapters.)"""
        providers = [self._ton_client.provider, *self._quorum_providers]
        if self.tron is not None:
            providers.append(self.tron.client.provider)
        unique = {id(p): p for p in providers}.values()  # a quorum's primary is one of them
        return ([_snapshot(stats) for provider in unique for stats in provider.stats()]
                + [book.snapshot() for book in self._books])

    async def aclose(self) -> None:
        for close in self._closers:
            await close()


def _snapshot(stats: EndpointStats) -> ProviderSnapshot:
    return ProviderSnapshot(
        name=stats.name, host=stats.host, state=stats.state.value, success_rate=stats.success_rate,
        latency_ms=stats.latency_ms, failures=stats.failures, throttled=stats.throttled,
        consecutive_failures=stats.consecutive_failures, last_error=stats.last_error,
        last_error_age_s=stats.last_error_age_s)


@dataclass
class Container:
    settings: Settings
    db: Database
    deps: Deps
    # The in-process chain simulator when the network is "devnet".
    devnet: Devnet | None = None
    tron_addresses: PrefetchedAddresses | None = None
    # The devnet's fake price sources (served at /devnet/rates; live rates read them on devnet).
    rates_fake: FakeRates | None = None
    _rates_close: Callable[[], Awaitable[None]] | None = None
    # Where the event log is exported (KRYPTON_NATS_URL); None: no export.
    event_sink: NatsSink | None = None
    _webhooks: webhook_use.Kit | None = None
    _session_tokens: JwtTokens | None = None
    _wallet_client: TonCenterClient | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    password_hasher: Argon2Hasher = field(default_factory=Argon2Hasher)
    _webhook_sender: WebhookSender | None = None
    # The devnet's fake Telegram Bot API (served at /devnet/telegram) when no token is set.
    telegram_fake: FakeBotApi | None = None
    _stars_bot: BotApi | None = None
    _leases: AdvisoryLeases | LocalLeases | None = None
    _merchant_bot: merchant_bot.Kit | None = None
    # The devnet's fake Fragment (served at /devnet/fragment) for the Stars shop.
    fragment_fake: FakeFragment | None = None
    _shop: ShopKit | None = None

    def secret_keys(self) -> tuple[KeyRing, str]:
        """The keys that seal secrets at rest, and where they came from (never the keys)."""
        configured = self.settings.secret_key
        return keyring_from(configured.get_secret_value() if configured else None,
                            self.settings.data_dir / "secret.key")

    def session_tokens(self) -> JwtTokens:
        """Signs and checks the dashboard's access tokens, with a key derived from the
        secret keys (KRYPTON_SECRET_KEY or the key file): every process of a cluster that
        shares those shares it."""
        if self._session_tokens is None:
            ring, _ = self.secret_keys()
            self._session_tokens = JwtTokens(ring.derive(b"session-jwt"), self.deps.clock.now)
        return self._session_tokens

    def business_metrics(self) -> BusinessMetrics:
        """The event-log consumer behind /metrics' business series (adapters/metrics)."""
        return BusinessMetrics(self.deps)

    async def consumer_lag(self) -> int:
        """Measure how far each event-log consumer is behind, for /metrics."""
        await consumers.refresh(self.deps)
        return 0  # always rest between measurements

    def webhook_kit(self) -> webhook_use.Kit:
        """The webhook sealer, URL check and sender, made on first use (the key file too)."""
        if self._webhooks is None:
            settings = self.settings
            ring, _ = self.secret_keys()
            # Development (the devnet, or loopback allowed for a local receiver) may use http.
            loopback = settings.webhooks_allow_loopback
            https = settings.network != "devnet" and not loopback
            if settings.webhooks_allow_loopback:
                log.warning("webhooks_allow_loopback", note="webhook URLs may point at this machine "
                            "(KRYPTON_WEBHOOKS_ALLOW_LOOPBACK): for development only")
            self._webhook_sender = WebhookSender(ssrf.SystemResolver(), require_https=https,
                                                 allow_loopback=loopback,
                                                 timeout=settings.webhook_timeout_seconds)
            self._webhooks = webhook_use.Kit(ring, UrlCheck(ssrf.SystemResolver(), https, loopback),
                                             self._webhook_sender)
        return self._webhooks

    def chains(self) -> ChainAdapters:
        """Readers for the configured network; on devnet they read `devnet` in process, or,
        in a process that does not host it (`krypton worker`), the host's over HTTP."""
        settings = self.settings
        if settings.network == "devnet":
            if self.devnet is not None:
                http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(self.devnet)),
                                         base_url=DEVNET_BASE)
                base = DEVNET_BASE
            else:
                http, base = httpx.AsyncClient(), settings.devnet_base
            ton_points = [Endpoint("devnet-toncenter", f"{base}/toncenter/api/v3",
                                   rate_per_second=1000, burst=100)]
            tron_points = [Endpoint("devnet-trongrid", f"{base}/trongrid",
                                    rate_per_second=1000, burst=100)]
        else:
            http, base = httpx.AsyncClient(), ""
            ton_points = ton_endpoints(settings)
            # TronGrid answers an exceeded quota with 429 or 403.
            tron_points = _endpoints("trongrid", settings.trongrid_urls, "TRON-PRO-API-KEY",
                                     settings.trongrid_api_key, frozenset({429, 403}))
        timeout = settings.provider_timeout_seconds
        # Several independent providers: the first stands where the single one did.
        ton_named = {name: ProviderClient(points, http=http, timeout=timeout)
                     for name, points in _provider_points(settings, "ton", base).items()}
        tron_named = {name: ProviderClient(points, http=http, timeout=timeout)
                      for name, points in _provider_points(settings, "tron", base).items()}
        ton_provider = (next(iter(ton_named.values())) if ton_named
                        else ProviderClient(ton_points, http=http, timeout=timeout))
        tron_provider = (next(iter(tron_named.values())) if tron_named
                         else ProviderClient(tron_points, http=http, timeout=timeout))
        ton_client = TonCenterClient(ton_provider)
        ton = tron = None
        if settings.ton_receiving_address:
            account = parse(settings.ton_receiving_address, network=ton_network(settings.network))
            master = parse(USDT_TON.contract or "", network="mainnet")
            ton = TonReader(ton_client, account, {master: USDT_TON.code})
        if settings.tron_account_xpub:
            testnet = settings.network == "testnet"
            tron = TronReader(TronGridClient(tron_provider, NILE_USDT if testnet else MAINNET_USDT,
                                             "testnet" if testnet else "mainnet"), self.deps.clock,
                              ScanPolicy(lookback=timedelta(seconds=settings.tron_scan_lookback_seconds),
                                         overlap=timedelta(seconds=settings.tron_scan_overlap_seconds),
                                         sweep_every=timedelta(seconds=settings.tron_sweep_seconds)))
        adapters = ChainAdapters(ton, tron, TonCenterCollectors(ton_client), ton_client,
                                 [ton_provider.aclose, tron_provider.aclose, http.aclose])
        self._chain_quorums(adapters, ton_named, tron_named)
        return adapters

    def _chain_quorums(self, adapters: ChainAdapters, ton_named: dict[str, ProviderClient],
                       tron_named: dict[str, ProviderClient]) -> None:
        """Readers under a quorum where a chain has several providers (adapters/chains/quorum.py)."""
        settings, clock = self.settings, self.deps.clock
        extra = [*list(ton_named.values())[1:], *list(tron_named.values())[1:]]
        adapters._quorum_providers = extra
        adapters._closers[:0] = [p.aclose for p in extra]
        # Audit positions survive a restart (a cursor of their own beside each reader's).
        positions = StoredPositions(self.deps.uow)
        for chain, named, quorum in (("ton", ton_named, settings.ton_quorum),
                                     ("tron", tron_named, settings.tron_quorum)):
            if len(named) > 1 and quorum * 2 <= len(named):  # `krypton doctor` flags it too
                log.warning("provider_quorum_not_a_majority", chain=chain, quorum=quorum,
                            providers=len(named), risk="a lying primary wins while its honest peers are down")
        if len(ton_named) > 1 and isinstance(adapters.ton, TonReader):
            adapters._ton_quorum = TonQuorum({n: TonCenterClient(p) for n, p in ton_named.items()},
                                             QuorumPolicy(quorum=settings.ton_quorum), clock, positions)
            adapters._books.append(adapters._ton_quorum.book)
            adapters.ton = adapters._ton_quorum.reader(adapters.ton.account, adapters.ton.masters)
        if len(tron_named) > 1 and isinstance(adapters.tron, TronReader):
            one = adapters.tron
            adapters.tron = tron_quorum(
                {n: TronReader(TronGridClient(p, one.client.usdt, one.client.network), clock, one.policy)
                 for n, p in tron_named.items()}, QuorumPolicy(quorum=settings.tron_quorum), clock, positions)
            adapters._books.append(adapters.tron.book)

    def backups(self) -> BackupStore:
        """Backups of this database into KRYPTON_BACKUP_DIR, each with the key file beside it
        when the keys come from the key file (from KRYPTON_SECRET_KEY they stay off disk)."""
        configured = self.settings.secret_key
        from_env = configured is not None and bool(configured.get_secret_value().strip())
        key = None if from_env else self.settings.data_dir / "secret.key"
        return BackupStore(self.db, self.settings.backups_path, key)

    def retention(self) -> tuple[Callable[[UnitOfWork], retention.Pruner], retention.Policy] | None:
        """What the retention job prunes with, and how long things are kept; None: keep all."""
        days = self.settings.retention_days
        return (pruner, retention.Policy(timedelta(days=days))) if days else None

    def leases(self) -> Leases:
        """Who runs the background jobs: PostgreSQL advisory locks, so one process in the
        cluster runs each job; on SQLite (one process) this process runs them all."""
        if self._leases is None:
            # One per process: the health check asks the instance the job runner holds.
            self._leases = AdvisoryLeases(self.db.url) if self.db.dialect == "postgresql" \
                else LocalLeases()
        return self._leases

    def collectors_of_server(self) -> tuple[TonCenterCollectors, Callable[[], Awaitable[None]]]:
        """Fee-collector contracts read from a process without the devnet in it (the CLI): on
        devnet, through the one the running server mounts at /devnet. Returns the reader and
        what closes it."""
        settings = self.settings
        http = httpx.AsyncClient()
        provider = ProviderClient(ton_endpoints(settings), http=http,
                                  timeout=settings.provider_timeout_seconds, max_attempts=2)

        async def close() -> None:
            await provider.aclose()
            await http.aclose()
        return TonCenterCollectors(TonCenterClient(provider)), close

    async def start_devnet(self) -> None:
        """Record this process's devnet as the chain the stored chain cursors follow, resetting
        them when the database last saw another chain (an earlier boot's). The process that
        runs the devnet calls it before watching (`krypton serve`); a CLI command's container
        leaves the server's cursors alone."""
        if self.devnet is None:
            return
        adopted = await devnet_genesis.adopt(self.deps, self.devnet.genesis)
        if adopted is not None:
            log.info("devnet_new_chain", genesis=self.devnet.genesis, previous=adopted.previous,
                     cursors_reset=adopted.reset)

    def devnet_wallet(self) -> Callable[[str, str, int, str | None], dict[str, Any]] | None:
        """Pay from the devnet's funded wallet (`method`, `to`, smallest units, comment): the
        checkout's devnet buttons; None off the devnet or where another process hosts it."""
        devnet = self.devnet
        if devnet is None:
            return None

        def pay(method: str, to: str, units: int, comment: str | None) -> dict[str, Any]:
            return send_payment(devnet, {"asset": method, "to": to, "amount": units, "comment": comment})
        return pay

    async def payer_jetton_wallet(self, owner: TonAddress) -> TonAddress:
        """The payer's own USDT jetton wallet (the master's get_wallet_address), through the
        provider layer: what a TON Connect jetton transfer is sent to (checkout)."""
        client = self._payer_ton_client()
        master = parse(USDT_TON.contract or "", network="mainnet")
        return await client.jetton_wallet(owner, master)

    async def wallet_public_key(self, wallet: TonAddress) -> bytes | None:
        """A wallet's get_public_key through the same client: the Stars shop's ton_proof
        sign-in, for a wallet whose state_init does not show its key."""
        return await chain_public_key(self._payer_ton_client(), wallet)

    def _payer_ton_client(self) -> TonCenterClient:
        if self._wallet_client is None:
            if self.devnet is not None:
                http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(self.devnet)),
                                         base_url=DEVNET_BASE)
                points = [Endpoint("devnet-toncenter", f"{DEVNET_BASE}/toncenter/api/v3",
                                   rate_per_second=1000, burst=100)]
            else:
                http, points = httpx.AsyncClient(), ton_endpoints(self.settings)
            provider = ProviderClient(points, http=http, timeout=self.settings.provider_timeout_seconds,
                                      max_attempts=2)
            self._wallet_client = TonCenterClient(provider)
            self._closers.extend([provider.aclose, http.aclose])
        return self._wallet_client

    def devnet_app(self, server: Any | None = None) -> Any | None:
        """The devnet's provider and control APIs, for the server to mount at /devnet (with the
        fake Bot API at /telegram and its payer at /control/stars/pay, which posts Telegram's
        updates to `server`'s /telegram/webhook: the ASGI app itself, else over HTTP)."""
        if self.devnet is None:
            return None
        app: Any = create_devnet_app(self.devnet)
        if self.rates_fake is not None:
            app = with_rates(app, self.rates_fake)
        if self.fragment_fake is not None:
            app = Starlette(routes=[Mount("/fragment", app=self.fragment_fake.app()), Mount("", app=app)])
        fake = self.telegram_fake
        if fake is None:
            return app
        # Updates go to this server's own webhook, posted as Telegram posts them.
        secret = self.telegram_webhook_secret()
        if server is not None:
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=DEVNET_BASE)
            self._closers.append(http.aclose)
            deliver = webhook(f"{DEVNET_BASE}/telegram/webhook", secret, client=http)
        else:
            deliver = webhook(self.settings.public_url.rstrip("/") + "/telegram/webhook", secret)
        return Starlette(routes=[Mount("/telegram", app=fake.app()),
                                 # /control/stars only: the rest of /control is the devnet's.
                                 Mount("/control/stars", routes=stars_routes(
                                     fake, self._devnet_stars_link, deliver)),
                                 Mount("", app=app)],
                         exception_handlers={DevnetError: refused})

    async def _devnet_stars_link(self, invoice_id: str) -> str:
        bot = self.stars_bot()
        assert bot is not None  # the devnet always has its fake
        try:
            return await stars.invoice_link(self.deps, bot, invoice_id, links=self.stars_links())
        except DomainError as exc:  # no such invoice, no Stars option, closed: say so
            raise InvalidInput(exc.message, field="invoice") from None

    def stars_bot(self) -> BotApi | None:
        """The Bot API for Telegram Stars: Telegram's with KRYPTON_TELEGRAM_BOT_TOKEN, else on
        devnet the fake one the devnet host serves at /devnet/telegram (aiogram's client has
        no in-process transport, so it goes over HTTP like a real one); None: Stars is off."""
        if self._stars_bot is None:
            token = self.settings.telegram_bot_token
            if token is not None:
                bot = BotApi(token.get_secret_value(), self.settings.telegram_api_url)
            elif self.settings.network == "devnet":
                bot = BotApi(DEVNET_BOT_TOKEN, self.settings.devnet_base + "/telegram")
            else:
                return None
            self._stars_bot = bot
            self._closers.append(bot.close)
        return self._stars_bot

    def merchant_bot(self) -> merchant_bot.Kit | None:
        """The merchant bot (linking, commands, notifications) on the Stars rail's bot;
        None where there is no bot."""
        if self._merchant_bot is None:
            bot = self.stars_bot()
            if bot is None:
                return None
            self._merchant_bot = merchant_bot.Kit(bot_repo, MerchantBotApi(bot),
                                                  self.settings.public_url)
        return self._merchant_bot

    def telegram_intake(self) -> Poller | WebhookRegistration | None:
        """The job that brings updates in: the poller (KRYPTON_TELEGRAM_MODE=polling), or the
        webhook's registration with a real bot (the devnet's fake posts to the webhook by
        itself); None: nothing to run."""
        kit, bot = self.merchant_bot(), self.stars_bot()
        if kit is None or bot is None or not isinstance(kit.messenger, MerchantBotApi):
            return None
        if self.settings.telegram_mode == "polling":
            return Poller(self.deps, kit.messenger, UpdateHandler(self.deps, bot, kit, self.telegram_met()))
        if self.settings.telegram_bot_token is None:
            return None
        return WebhookRegistration(kit.messenger, self.telegram_webhook_url(),
                                   self.telegram_webhook_secret())

    def telegram_met(self) -> Met | None:
        """Where the bot's updates tell who it met: the shop, for Premium gifts (None: off)."""
        kit = self.shop()
        if kit is None or kit.users is None:
            return None
        return partial(shop_use.remember_user, self.deps, kit)

    def telegram_webhook_url(self) -> str:
        return self.settings.public_url.rstrip("/") + "/telegram/webhook"

    def telegram_webhook_secret(self) -> str:
        """What Telegram sends in X-Telegram-Bot-Api-Secret-Token: the configured one, else
        derived from the secret keys, so every process sharing those keys agrees on it."""
        configured = self.settings.telegram_webhook_secret
        if configured is not None:
            return configured.get_secret_value()
        ring, _ = self.secret_keys()
        return ring.derive(b"telegram-webhook").hex()

    def stars_links(self) -> SqlStarsPlanLinks:
        return SqlStarsPlanLinks(self.db)

    def stars_books(self) -> StarsBooks:
        """Refunds, held settlements, subscriptions and reconciliation reports, written in a
        unit of work's own transaction."""
        return stars_book

    def refund_kit(self) -> RefundKit:
        bot = self.stars_bot()
        return RefundKit(stars_book, bot, bot, self.chain_refunds())

    def chain_refunds(self) -> ChainRail:
        """Chain refunds through the signer's socket; claim links signed with a key derived
        from the secret keys (every process sharing them accepts the same links)."""
        ring, _ = self.secret_keys()
        client = SignerClient(self.settings.signer_socket_path)
        return ChainRail(chain_refund_book, SignerRefunds(client), ring.derive(b"refund-claim"),
                         self.settings.public_url, SIGNER_ASSETS)

    def stars_hold(self) -> timedelta:
        return timedelta(days=self.settings.stars_hold_days)

    def miniapp_bindings(self) -> SqlMiniAppBindings:
        return SqlMiniAppBindings(self.db)

    def miniapp_bot_token(self) -> str | None:
        """The token the Mini App's initData is checked with (HMAC): the configured bot's,
        else on devnet the fake Bot API's; None: only the Ed25519 check, if configured."""
        token = self.settings.telegram_bot_token
        if token is not None:
            return token.get_secret_value()
        return DEVNET_BOT_TOKEN if self.settings.network == "devnet" else None

    def signer(self, wallet: HotWallet) -> tuple[Signer, Callable[[], Awaitable[None]]]:
        """The signer around `wallet` (built by `krypton signer run` from its keystore): its
        outbox in this database and the chain through TON Center (on devnet, the one the
        running server mounts); returns it and what closes it."""
        settings = self.settings
        if settings.network == "devnet" and self.devnet is not None:
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(self.devnet)),
                                     base_url=DEVNET_BASE)
            base, key = f"{DEVNET_BASE}/toncenter/api/v3", None
        else:
            http = httpx.AsyncClient(timeout=settings.provider_timeout_seconds)
            base, key = ((f"{settings.devnet_base}/toncenter/api/v3", None) if settings.network == "devnet"
                         else (settings.toncenter_urls[0], settings.toncenter_api_key))
        policy = Policy({asset: Limits(v["per_transfer"], v["per_day"])
                         for asset, v in settings.signer_limits.items()})
        signer = Signer(wallet, WalletChain(http, base, api_key=key), Outbox(self.db, wallet.address.raw),
                        policy, self.deps.clock, self.deps.ids.new, network=settings.network)
        return signer, http.aclose

    def signer_port(self) -> SignerPort | None:
        """The signer as payouts and fee sweeps ask it, over its socket: where
        KRYPTON_SIGNER_SOCKET is set (the operator runs `krypton signer run` there), or on
        devnet (its default socket in data_dir). None elsewhere: no hot wallet is configured,
        so nothing is sent (payout requests are refused rather than left waiting)."""
        settings = self.settings
        if settings.signer_socket is None and settings.network != "devnet":
            return None
        return SignerPort(SignerClient(settings.signer_socket_path))

    def payout_kit(self) -> PayoutKit:
        return PayoutKit(payout_book, self.signer_port())

    def payout_batching(self) -> Batching:
        """Every payout_batch_seconds, or as soon as a batch fills the wallet's external."""
        settings = self.settings
        size = settings.payout_batch_size or (255 if settings.signer_wallet_version == "v5r1" else 4)
        return Batching(settings.payout_batch_seconds, size)

    def sweep_kit(self) -> SweepKit:
        settings = self.settings
        return SweepKit(sweep_book, self.signer_port(), dict(settings.fee_sweep_thresholds),
                        settings.treasury_address)

    def shop(self) -> ShopKit | None:
        """The Stars shop (app/shop.py): its suppliers through the provider layer, the signer,
        the paying wallets' lookup; None where it is off (KRYPTON_SHOP_ENABLED, default: on
        devnet or with a signer address). On devnet Fragment is the fake at /devnet/fragment
        and the shop's fee collector is deployed into the simulator on first use."""
        settings = self.settings
        enabled = settings.shop_enabled
        if enabled is None:
            enabled = settings.network == "devnet" or settings.signer_address is not None
        if not enabled:
            return None
        if self._shop is None:
            self._shop = build_shop(self)
        return self._shop

    async def signer_audit(self, limit: int) -> list[AuditRow]:
        """The signer's most recent signatures (`krypton signer audit`; no key needed)."""
        return await Outbox(self.db, "").audit(limit)

    def background(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """Jobs besides Krypton's own workers: the devnet's block timer."""
        devnet = self.devnet
        if devnet is None:
            return []
        return [lambda: run_block_timer(devnet, self.settings.devnet_ton_block_seconds,
                                        self.settings.devnet_tron_block_seconds)]

    async def stop_helpers(self) -> None:
        """Stop the processes the rails run beside this one (the Tron address helper)."""
        if self.tron_addresses is not None:
            await self.tron_addresses.aclose()

    async def close(self) -> None:
        await self.stop_helpers()
        if self._leases is not None:
            await self._leases.close()
        if self._webhook_sender is not None:
            await self._webhook_sender.aclose()
        for close in self._closers:
            await close()
        if self._rates_close is not None:
            await self._rates_close()
        if self.event_sink is not None:
            await self.event_sink.close()
        await self.db.dispose()


@dataclass(frozen=True)
class UrlCheck:
    """The app's URL guard (app/ports.UrlGuard) over the SSRF checks."""

    resolver: ssrf.Resolver
    require_https: bool
    allow_loopback: bool

    async def check(self, url: str) -> None:
        try:
            await ssrf.check_url(url, self.resolver, require_https=self.require_https,
                                 allow_loopback=self.allow_loopback)
        except ssrf.UnsafeUrl as exc:
            text = str(exc)  # as a sentence, like every API error
            sentence = text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
            raise DomainError(sentence, field="url", code="unsafe_url") from None


def build_shop(container: Container) -> ShopKit:
    """The shop's kit (Container.shop), its HTTP clients closed with the container."""
    settings, devnet = container.settings, container.devnet
    if devnet is not None:
        fake = container.fragment_fake or FakeFragment(devnet)
        container.fragment_fake = fake
        local = Starlette(routes=[Mount("/fragment", app=fake.app()),
                                  Mount("", app=create_devnet_app(devnet))])
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=local), base_url=DEVNET_BASE)
        fragment = [Endpoint("devnet-fragment", f"{DEVNET_BASE}/fragment",
                             rate_per_second=settings.shop_fragment_rate_per_second, burst=1)]
        ton = [Endpoint("devnet-toncenter", f"{DEVNET_BASE}/toncenter/api/v3", rate_per_second=1000,
                        burst=100)]
        api_hash = "devnet"
    else:
        http = httpx.AsyncClient()
        cookie = settings.shop_fragment_cookie
        fragment = [Endpoint("fragment", settings.shop_fragment_url,
                             headers={"Cookie": cookie.get_secret_value()} if cookie else {},
                             rate_per_second=settings.shop_fragment_rate_per_second, burst=1)]
        ton = ton_endpoints(settings)
        api_hash = settings.shop_fragment_hash.get_secret_value() if settings.shop_fragment_hash else ""
    timeout = settings.provider_timeout_seconds
    fragment_provider = ProviderClient(fragment, http=http, timeout=timeout, max_attempts=3)
    ton_provider = ProviderClient(ton, http=http, timeout=timeout, max_attempts=2)
    container._closers.extend([fragment_provider.aclose, ton_provider.aclose, http.aclose])
    suppliers: list[StarsSupplier] = []
    if "fragment" in settings.shop_suppliers:
        suppliers.append(FragmentSupplier(fragment_provider, api_hash))
    users = StoredTelegramUsers(container.deps.uow)
    bot = container.stars_bot()
    if "telegram_premium_gift" in settings.shop_suppliers and bot is not None:
        suppliers.append(TelegramPremiumGift(bot, container.deps.rates, users,
                                             spendable=platform_stars(container.deps)))
    deploy = None
    if devnet is not None:
        async def deploy(plan: CollectorPlan) -> None:
            address = parse(plan.address, network="testnet")
            if devnet.ton.collector(address) is None:
                devnet.ton.deploy_collector(Cell.one_from_boc(base64.b64decode(plan.state_init)),
                                            plan.deploy_amount)
                devnet.produce("ton")
    return ShopKit(
        suppliers, order_book, container.signer_port() if settings.signer_address else None,
        settings.signer_address, senders=TonSenders(ton_provider, settings.network), users=users,
        fee_bps=settings.shop_fee_bps, quote_ttl=timedelta(seconds=settings.shop_quote_ttl_seconds),
        deadline=timedelta(seconds=settings.shop_deadline_seconds),
        network_fee=settings.shop_network_fee, minimum=settings.shop_min_stars,
        maximum=settings.shop_max_stars,
        collector_chain=TonCenterCollectors(TonCenterClient(ton_provider)), deploy=deploy,
        order_url=lambda order_id: f"{settings.public_url.rstrip('/')}/stars/orders/{order_id}")


def _endpoints(name: str, urls: list[str], key_header: str, key: str | None,
               throttle_statuses: frozenset[int] = frozenset({429})) -> list[Endpoint]:
    headers = {key_header: key} if key else {}
    # TON Center: 1 request/s without a key, 10 with the smallest plan (CHAINS.md).
    rate = 10.0 if key else 1.0
    return [Endpoint(f"{name}-{i}", url, headers=headers, rate_per_second=rate,
                     throttle_statuses=throttle_statuses) for i, url in enumerate(urls)]


def _provider_points(settings: Settings, chain: str, devnet_base: str) -> dict[str, list[Endpoint]]:
    """KRYPTON_TON_PROVIDERS / _TRON_PROVIDERS: each provider's endpoints, by name. On devnet
    each name is a provider of the devnet's chain (X-Devnet-Provider: its name)."""
    api, path, header = (("toncenter", "/toncenter/api/v3", "X-API-Key") if chain == "ton"
                         else ("trongrid", "/trongrid", "TRON-PRO-API-KEY"))
    throttles = frozenset({429}) if chain == "ton" else frozenset({429, 403})
    points: dict[str, list[Endpoint]] = {}
    for provider in getattr(settings, f"{chain}_providers"):
        if settings.network == "devnet":
            points[provider.name] = [Endpoint(f"devnet-{api}-{provider.name}", f"{devnet_base}{path}",
                                              headers={"X-Devnet-Provider": provider.name},
                                              rate_per_second=1000, burst=100)]
        else:
            points[provider.name] = _endpoints(f"{api}-{provider.name}", provider.urls, header,
                                               provider.api_key, throttles)
    return points


def ton_endpoints(settings: Settings) -> list[Endpoint]:
    """TON Center for a process without the devnet in it (the CLI): on devnet, the one the
    running server mounts at /devnet."""
    if settings.network == "devnet":
        return [Endpoint("devnet-toncenter", f"{settings.devnet_base}/toncenter/api/v3",
                         rate_per_second=100)]
    return _endpoints("toncenter", settings.toncenter_urls, "X-API-Key", settings.toncenter_api_key)


async def build(settings: Settings, *, clock: Clock | None = None,
                devnet_nonce: str | None = None, host_devnet: bool = True) -> Container:
    """Everything a process needs. On devnet the simulator gets `devnet_nonce` (default: a
    random one, so each boot is a chain of its own; tests fix it); a process that does not
    `host_devnet` (`krypton worker`: one process hosts it, `krypton serve`) reads the host's
    at settings.devnet_base. On a real network a database the devnet was run on is refused
    (DevnetDatabase)."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database.open(settings.db_url,
                       idle_in_transaction_seconds=settings.pg_idle_in_transaction_seconds)
    if settings.auto_migrate or db.dialect == "sqlite":
        await migrate.upgrade(db)
    ids = RandomIds()
    tron = PrefetchedAddresses(settings.tron_account_xpub) if settings.tron_account_xpub else None
    clock = clock or SystemClock()
    fake = FakeRates(clock.now) if settings.network == "devnet" else None
    rates, rates_close = usd_rates(settings, clock, fake)
    deps = Deps(
        uow=UowFactory(db, ids.new), clock=clock, ids=ids, rates=rates,
        rails=ChainRails(settings.network, settings.ton_receiving_address, tron,
                         settings.fee_collector_owner_address, stars=settings.telegram_bot),
        default_expiry=timedelta(seconds=settings.invoice_expiry_seconds),
        monitoring_window=timedelta(seconds=settings.monitoring_window_seconds),
        telemetry=PrometheusTelemetry())
    devnet = None
    if settings.network == "devnet" and host_devnet:
        devnet = Devnet(deps.clock.now, nonce=secrets.token_hex(8) if devnet_nonce is None else devnet_nonce)
    container = Container(settings, db, deps, devnet, tron, fake, rates_close)
    if devnet is not None and settings.signer_address:
        hot = parse(settings.signer_address, network="testnet")
        devnet.ton.fund(hot, DEVNET_SIGNER_NANOTONS)
        devnet.ton.fund_jetton(hot, DEVNET_SIGNER_USDT)  # USDT_TON payouts on the devnet
    if devnet is not None:
        container.fragment_fake = FakeFragment(devnet)  # the Stars shop's supplier, /devnet/fragment
    if devnet is not None and settings.telegram_bot_token is None:
        container.telegram_fake = FakeBotApi(DEVNET_BOT_TOKEN, now=deps.clock.now)
    if settings.nats_url:
        container.event_sink = NatsSink(settings.nats_url)  # connects on first export
    if settings.network != "devnet":
        try:
            await devnet_genesis.refuse_devnet_database(deps, settings.network)
        except devnet_genesis.DevnetDatabase:
            await container.close()
            raise
    return container


def usd_rates(settings: Settings, clock: Clock, fake: FakeRates | None
              ) -> tuple[RateSource, Callable[[], Awaitable[None]] | None]:
    """The configured rate source, and what closes it: the static table, or live rates from
    CoinGecko then Binance (on devnet, from `fake` in process, through the same code)."""
    static = StaticRates(settings.usd_rates)
    if settings.rates_mode == "static":
        return static, None
    if fake is not None:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_rates_app(fake)),
                                 base_url=DEVNET_BASE)
        gecko = [Endpoint("devnet-coingecko", f"{DEVNET_BASE}/coingecko/api/v3",
                          rate_per_second=1000, burst=100)]
        spot = [Endpoint("devnet-binance", f"{DEVNET_BASE}/binance", rate_per_second=1000, burst=100)]
    else:
        http = httpx.AsyncClient()
        key = settings.rates_coingecko_api_key
        # CoinGecko's public API allows a few calls a minute, Binance far more: a refresh per
        # TTL needs one call to each at most, two with a retry (the burst, so none waits).
        gecko = [Endpoint(f"coingecko-{i}", url, headers={coingecko.KEY_HEADER: key} if key else {},
                          rate_per_second=0.5, burst=2)
                 for i, url in enumerate(settings.rates_coingecko_urls)]
        spot = [Endpoint(f"binance-{i}", url, rate_per_second=1.0, burst=2)
                for i, url in enumerate(settings.rates_binance_urls)]
    # A manual clock (tests) times the rate cache too; the real one leaves it on the monotonic
    # clock, which no wall-clock step moves back. The limiters and breakers stay on real time:
    # a limiter waiting for a token on a clock nobody moves would wait for ever.
    ticks = time.monotonic if isinstance(clock, SystemClock) else (lambda: clock.now().timestamp())
    providers = [ProviderClient(points, http=http, timeout=settings.rates_timeout_seconds,
                                max_attempts=2, base_delay=0.1, parse_float=Decimal)
                 for points in (gecko, spot)]
    live = LiveRates([CoinGecko(providers[0], clock.now), Binance(providers[1], clock.now)],
                     static, ticks=ticks, ttl=settings.rates_ttl_seconds,
                     max_age=timedelta(seconds=settings.rates_max_age_seconds))

    async def close() -> None:
        for provider in providers:
            await provider.aclose()
        await http.aclose()
    return live, close
