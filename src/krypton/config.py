"""Settings, read once at start-up from KRYPTON_* environment variables and passed down."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import limits
from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from krypton.adapters.chains.tron.derivation import DepositAddresses, InvalidExtendedKey
from krypton.adapters.secrets.envelope import EnvelopeError, KeyRing
from krypton.domain import money
from krypton.domain.errors import DomainError
from krypton.domain.invoice import validate_expiry

# Devnet defaults: public, well-known values that hold no money on any real chain.
DEVNET_TON_ADDRESS = "0:" + "d3" * 32
DEVNET_TRON_XPUB = ("xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7"
                    "dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd")


class ChainProvider(BaseModel):
    """One independent chain provider: its own failover URLs and key (KRYPTON_*_PROVIDERS)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="Lower-case letters, "
                      "digits, - and _: its label in metrics and logs.")
    urls: list[str] = Field([], description="Base URLs, tried in order of health (not on devnet).")
    api_key: str | None = None

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s) URL with a host.")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KRYPTON_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Folder for the embedded SQLite database.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/db; "
        "default: SQLite in data_dir.")
    redis_url: str | None = Field(
        None, description="Redis for shared rate-limit counters; default: in-process memory.")
    nats_url: str | None = Field(
        None, description="NATS server (nats://host:4222) with JetStream: every event is "
        "exported to the stream KRYPTON_EVENTS; default: no export.")
    pg_idle_in_transaction_seconds: float = Field(
        60, ge=0, description="PostgreSQL: a Krypton session left idle inside a transaction "
        "this long is cut (0: never), so it cannot hold back the event-log horizon.")
    host: str = Field("127.0.0.1", description="Address `krypton serve` listens on.")
    port: int = Field(8000, description="Port `krypton serve` listens on.")
    public_url: str = Field(
        "", description="Base URL payers reach; default: the address `krypton serve` listens on "
        "(http://host:port, 127.0.0.1 for an all-interfaces host).")
    network: Literal["devnet", "testnet", "mainnet"] = Field(
        "devnet", description="Which chains to use; devnet is the built-in local simulator.")
    ton_address: str | None = Field(
        None, description="Platform TON receiving address (merchants may set their own); "
        "devnet default: the devnet platform wallet.")
    fee_collector_owner: str | None = Field(
        None, description="Owner of merchants' fee-collector contracts: receives the fees and "
        "alone may withdraw or change the threshold; default: the platform TON address.")
    tron_xpub: str | None = Field(
        None, description="Account extended public key (m/44'/195'/0') for Tron deposit "
        "addresses; devnet default: the public BIP-44 test vector (never fund it).")
    toncenter_urls: list[str] = Field(
        ["https://toncenter.com/api/v3"], description="TON Center v3 base URLs, tried in order of "
        "health (JSON list). Ignored on devnet.")
    toncenter_api_key: str | None = Field(None, description="TON Center key (X-API-Key).")
    trongrid_urls: list[str] = Field(
        ["https://api.trongrid.io"], description="TronGrid / node HTTP base URLs (JSON list). "
        "Ignored on devnet.")
    trongrid_api_key: str | None = Field(None, description="TronGrid key (TRON-PRO-API-KEY).")
    ton_providers: list[ChainProvider] = Field(
        [], description="Independent TON Center v3 providers, each its own failover URLs (JSON list "
        "of {name, urls, api_key}); empty: the one provider of toncenter_urls. On devnet the URLs "
        "are ignored: each name is a provider of the devnet's chain.")
    tron_providers: list[ChainProvider] = Field(
        [], description="Independent TronGrid / node providers (JSON list of {name, urls, api_key}); "
        "empty: the one provider of trongrid_urls.")
    ton_quorum: int = Field(
        1, ge=1, description="How many healthy TON providers must report a transfer the same "
        "before it is final (1 to the number of ton_providers).")
    tron_quorum: int = Field(
        1, ge=1, description="How many healthy Tron providers must report a transfer the same "
        "before it is final (1 to the number of tron_providers).")
    tron_scan_lookback_seconds: int = Field(
        3600, ge=60, description="Above 20 open deposit addresses Tron is read by one scan of "
        "USDT's events: how far back a scan may start (the first one at the latest).")
    tron_scan_overlap_seconds: int = Field(
        300, ge=6, description="What each rewind of the Tron event scan re-reads (every half of "
        "it): events TronGrid indexes up to half this late are still found.")
    tron_sweep_seconds: int = Field(
        600, ge=10, description="While the event scan runs, every open Tron deposit address is "
        "also polled on its own this often (the safety net).")
    provider_timeout_seconds: float = Field(10.0, description="Timeout of each chain provider call.")
    watch_interval_seconds: float = Field(2.0, description="Pause between chain polls when idle.")
    clock_skew_limit_seconds: float = Field(
        60.0, gt=0, description="A server clock further than this from a chain's newest block "
        "time (either way) is logged as a warning, once per episode; the skew is always on "
        "/metrics (krypton_clock_skew_seconds).")
    role: Literal["all", "api"] = Field(
        "all", description="What `krypton serve` runs: all (the API and the background jobs, "
        "the embedded default) or api (the API only, beside `krypton worker` processes; "
        "PostgreSQL only).")
    devnet_url: str | None = Field(
        None, description="Base URL of the `krypton serve` process that hosts the devnet, "
        "which `krypton worker` and the CLI read the simulated chains through (at /devnet); "
        "default: public_url.")
    devnet_ton_block_seconds: float = Field(1.0, description="Devnet TON block interval.")
    devnet_tron_block_seconds: float = Field(3.0, description="Devnet Tron block interval.")
    auto_migrate: bool = Field(
        True, description="Apply migrations at start-up (always on for the SQLite default).")
    usd_rates: dict[str, str] = Field(
        {"TON": "5.00", "USDT": "1.00", "XTR": "0.013"},
        description="Static USD rates per whole unit (JSON). Labelled static: not live prices.")
    rates: Literal["static", "live"] | None = Field(
        None, description="Where USD rates come from: static (the usd_rates table) or live "
        "(TON and USDT from CoinGecko, then Binance; on devnet, the devnet's fakes of them). "
        "Default: static on devnet, live on testnet and mainnet.")
    rates_coingecko_urls: list[str] = Field(
        ["https://api.coingecko.com/api/v3"], description="CoinGecko API v3 base URLs (JSON "
        "list). Ignored on devnet.")
    rates_coingecko_api_key: str | None = Field(
        None, description="CoinGecko Demo API key (x-cg-demo-api-key); optional.")
    rates_binance_urls: list[str] = Field(
        ["https://api.binance.com", "https://api-gcp.binance.com"], description="Binance spot "
        "API base URLs (JSON list), the fallback source. Ignored on devnet.")
    rates_ttl_seconds: float = Field(30.0, gt=0, description="How long a fetched rate is reused.")
    rates_max_age_seconds: float = Field(
        600.0, gt=0, description="While the sources fail, the last rates still price invoices "
        "this long after they were quoted; then invoices priced in USD get 503.")
    rates_timeout_seconds: float = Field(5.0, gt=0, description="Timeout of each rate source call.")
    max_body_bytes: int = Field(
        65_536, ge=1024, description="Largest request body the API takes, in bytes; larger "
        "ones get 413 before they are read.")
    invoice_expiry_seconds: int = Field(900, description="Default invoice lifetime.")
    monitoring_window_seconds: int = Field(
        86_400, description="After expiry, payments are still accepted this long (paid_late).")
    rate_limit_invoice_create: str = Field("1000/hour", description="Per API key.")
    rate_limit_reads: str = Field("5000/hour", description="Per API key.")
    rate_limit_public: str = Field("100/minute", description="Per client IP, public endpoints.")
    rate_limit_global: str = Field("1000/second", description="Whole server.")
    api_key_cache_seconds: float = Field(
        2.0, description="How long a verified API key is cached in memory: a revoked key "
        "stops working within this many seconds.")
    operator_token: SecretStr | None = Field(
        None, description="Bearer token for the operator API (/api/v1/operator/...); unset: "
        "that API is off.")
    secret_key: SecretStr | None = Field(
        None, description="Keys that encrypt secrets at rest (webhook signing secrets): "
        "<id>:<base64 of 32 random bytes>, several separated by commas, the first sealing new "
        "ones; default: the key file secret.key in data_dir, created with mode 0600. Add a new "
        "key first and run `krypton keys rotate` to re-encrypt.")
    webhooks_allow_loopback: bool = Field(
        False, description="Let webhook URLs point at this machine (127.0.0.1, ::1, localhost): "
        "for development with `krypton webhooks listen` only; private and link-local "
        "addresses stay refused.")
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, le=30, description="How long one webhook attempt may take, all in.")
    telegram_bot_token: SecretStr | None = Field(
        None, description="Telegram bot token (from @BotFather) for Telegram Stars; unset: on "
        "devnet Krypton runs its own fake Bot API, elsewhere Stars is off.")
    telegram_webhook_secret: SecretStr | None = Field(
        None, description="The secret_token given to setWebhook, checked on every update "
        "(1-256 of A-Z a-z 0-9 _ -); required with a bot token (you register the webhook with "
        "it); without one, derived from the secret keys.")
    stars_hold_days: int = Field(
        21, ge=0, le=365, description="Days Telegram holds received Stars before a bot may "
        "withdraw them (21, Telegram's hold for bot revenue): Stars balances show them as "
        "pending until then, available after.")
    telegram_api_url: str = Field(
        "https://api.telegram.org", description="Bot API server used with a bot token; "
        "without a token, the devnet's fake Bot API is used.")
    telegram_mode: Literal["webhook", "polling"] = Field(
        "webhook", description="How the bot receives updates: webhook (Telegram posts to "
        "/telegram/webhook; with a bot token and an https public_url Krypton registers it at "
        "start-up, else `krypton telegram set-webhook`) or polling (getUpdates by one process "
        "of the cluster; for a server Telegram cannot reach).")
    telegram_bot_id: int | None = Field(
        None, gt=0, description="The id of a bot whose Mini App opens Krypton's checkout "
        "without Krypton holding its token (the digits before ':' in its token): its initData "
        "is then checked with Telegram's Ed25519 signature (third-party validation).")
    telegram_miniapp_link: str | None = Field(
        None, description="The Mini App's link (https://t.me/<bot>/<app>): a TON wallet opened "
        "from Krypton's pages inside Telegram sends the payer back there (TON Connect's "
        "twaReturnUrl); unset: the wallet's own default.")
    miniapp_auth_max_age_seconds: int = Field(
        3600, ge=60, le=86400, description="How old a Mini App's initData (auth_date) may be "
        "when it starts a session: short, as initData proves who a user is to anyone who gets "
        "hold of it; an hour covers a checkout left open, and reopening the app renews it.")
    backup_interval: int = Field(
        21_600, ge=0, description="Seconds between the scheduled backups the background jobs "
        "take (`krypton worker`, or `krypton serve` on SQLite); 0: none. Also 15m, 6h, 1d.")
    backup_keep: int = Field(
        28, ge=1, description="How many scheduled backups are kept; older ones are deleted.")
    backup_dir: Path | None = Field(
        None, description="Folder for backups (`krypton backup`, the scheduled ones); default: "
        "backups/ in data_dir. Put it on another disk, and copy it off the machine.")
    retention_days: int = Field(
        90, ge=0, description="Finished webhook deliveries (with their attempts), bot "
        "notifications and idempotency keys older than this many days are deleted by a "
        "background job (money, the ledger and the event log never are); 0: keep them all.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug, info, warning or error.")
    log_format: Literal["json", "console"] = Field(
        "json", description="json: one JSON object per line, for a log pipeline; console: "
        "aligned key=value lines for a person at a terminal. Secrets are redacted in both.")
    access_log: bool = Field(
        True, description="One line per HTTP request (method, route, status, duration, "
        "request id); /livez, /healthz, /readyz and /metrics are never logged.")
    sentry_dsn: SecretStr | None = Field(
        None, description="Report errors to Sentry (or a compatible server such as GlitchTip) "
        "at this DSN; unset: nothing is sent. Reports carry the request id, never a request "
        "body, header value, cookie, key or token.")
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port on which `krypton worker` serves /metrics "
        "(its own series: jobs, chains, providers); unset: none. `krypton serve` serves "
        "/metrics on its HTTP port.")
    # The hot-wallet signer (`krypton signer`, adapters/signer/). No key material is a
    # setting: the mnemonic lives only in the signer's encrypted keystore.
    signer_socket: Path | None = Field(
        None, description="Unix socket of `krypton signer run`; default: signer.sock in data_dir.")
    signer_wallet_version: Literal["v5r1", "v4r2"] = Field(
        "v5r1", description="Hot wallet contract: v5r1 (up to 255 messages an external) or v4r2 (4).")
    signer_address: str | None = Field(
        None, description="The hot wallet's address as `krypton signer init` printed it (public): "
        "on devnet the simulator funds it at start-up.")
    signer_limits: dict[str, dict[str, int]] = Field(
        {"TON": {"per_transfer": 1_000 * 10**9, "per_day": 10_000 * 10**9},
         "USDT_TON": {"per_transfer": 10_000 * 10**6, "per_day": 100_000 * 10**6}},
        description="Per asset, the signer's per_transfer and per_day limits in smallest units (JSON).")
    # Payouts and fee sweeps (app/payouts.py, app/fee_sweeps.py), sent through the signer.
    payout_batch_seconds: float = Field(
        30.0, gt=0, description="Payouts waiting are sent at least this often (seconds), in one "
        "signer call; sooner when payout_batch_size are waiting.")
    payout_batch_size: int | None = Field(
        None, ge=1, le=255, description="Payouts per batch; default: the wallet's limit of messages "
        "in one external (255 for v5r1, 4 for v4r2).")
    fee_sweep_thresholds: dict[str, int] = Field(
        {"USDT_TON": 100 * 10**6, "XTR": 10_000}, description="Per asset, the platform fees (in "
        "smallest units) at which fees:<asset> is swept to the owner (JSON): USDT on TON to "
        "treasury_address through the signer, Stars to the owner's ledger account.")
    treasury_address: str | None = Field(
        None, description="The platform owner's wallet (TON address) fee sweeps are paid to; "
        "unset: on-chain sweeps wait.")
    # The Stars shop (app/shop.py, app/fulfilment.py): a merchant of the platform's own whose
    # fee collector forwards the cost to the signer's hot wallet and keeps the fee.
    shop_enabled: bool | None = Field(
        None, description="Run the Stars shop; default: on devnet, or where signer_address is set.")
    shop_fee_bps: int = Field(
        100, ge=0, le=2_000,
        description="The shop's fee in basis points of the total (kept by the collector).")
    shop_suppliers: list[Literal["fragment", "telegram_premium_gift"]] = Field(
        ["fragment", "telegram_premium_gift"], description="The shop's suppliers, asked in "
        "parallel for quotes, the cheapest available used, the others in turn on failure: "
        "fragment (Stars and Premium, paid in TON by the signer), telegram_premium_gift "
        "(Premium only, paid from the bot's own Stars; needs the Bot API).")
    shop_fragment_url: str = Field(
        "https://fragment.com", description="Fragment's base URL (on devnet: the fake at /devnet/fragment).")
    shop_fragment_hash: SecretStr | None = Field(
        None, description="Fragment's API hash of the shop's session (?hash=).")
    shop_fragment_cookie: SecretStr | None = Field(
        None, description="Fragment's session cookie (stel_ssid=…; stel_token=…). Never a wallet seed.")
    shop_fragment_rate_per_second: float = Field(
        5.0, gt=0, description="Requests a second the shop allows itself at Fragment.")
    shop_quote_ttl_seconds: int = Field(
        300, ge=60, le=3_600, description="How long a shop quote's price holds: the order's invoice "
        "expires with it (the supplier's price may move after).")
    shop_deadline_seconds: int = Field(
        900, ge=30, description="A paid order not delivered within this is refunded.")
    shop_network_fee: int = Field(
        10_000_000, ge=0, description="Nanoton kept from a refund for the network fee of sending it.")
    shop_min_stars: int = Field(50, ge=1, description="Fewest Stars an order may buy (Fragment: 50).")
    shop_max_stars: int = Field(1_000_000, ge=1, description="Most Stars an order may buy.")

    @field_validator("rate_limit_invoice_create", "rate_limit_reads", "rate_limit_public",
                     "rate_limit_global")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a rate limit; write it like '100/minute'.") from None
        return value

    @field_validator("usd_rates")
    @classmethod
    def _rates(cls, value: dict[str, str]) -> dict[str, str]:
        for currency in ("TON", "USDT", "XTR"):
            if currency not in value:
                raise ValueError(f"usd_rates needs a rate for {currency}.")
            try:
                money.parse_rate(value[currency])
            except DomainError as exc:  # a validator must raise ValueError to be reported
                raise ValueError(f"usd_rates[{currency}]: {exc.message}") from None
        return value

    @field_validator("rates_coingecko_urls", "rates_binance_urls")
    @classmethod
    def _rate_urls(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if not value:
            raise ValueError(f"{info.field_name} needs at least one URL.")
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError(f"{info.field_name}: {url!r} is not an http(s) URL with a host.")
        return value

    @field_validator("telegram_miniapp_link")
    @classmethod
    def _miniapp_link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or parts.hostname != "t.me" or len(parts.path.strip("/")) < 2:
            raise ValueError("telegram_miniapp_link must be the Mini App's https://t.me/<bot>/<app> "
                             "link (or https://t.me/<bot>).")
        return value

    @field_validator("rates_max_age_seconds")
    @classmethod
    def _rates_max_age(cls, value: float, info: ValidationInfo) -> float:
        ttl = info.data.get("rates_ttl_seconds", 30.0)
        if value < ttl:
            raise ValueError(f"rates_max_age_seconds ({value:g}) must be at least "
                             f"rates_ttl_seconds ({ttl:g}): a rate is reused that long.")
        return value

    @field_validator("backup_interval", mode="before")
    @classmethod
    def _backup_interval(cls, value: object) -> object:
        # Operators think of this in hours: 6h, 15m, 1d as well as plain seconds.
        units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
        if isinstance(value, str) and (found := re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", value)):
            return int(found.group(1)) * units[found.group(2)]
        return value

    @field_validator("invoice_expiry_seconds")
    @classmethod
    def _expiry(cls, value: int) -> int:
        try:
            validate_expiry(timedelta(seconds=value))
        except DomainError:  # worded for the API's expires_in: say it for this setting
            raise ValueError("must be between 60 and 2,592,000 seconds (1 minute to 30 days).") \
                from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql+asyncpg://", "sqlite:///")):
            raise ValueError("Krypton runs on PostgreSQL (postgresql+asyncpg://user@host/db) or "
                             "SQLite (sqlite:///path, the default when unset); "
                             f"'{value.split(':', 1)[0]}' is neither.")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        # The schemes the rate limiter (web/ratelimit.py, through `limits`) can use.
        schemes = ("redis://", "rediss://", "redis+unix://", "redis+cluster://")
        if value is not None and not value.removeprefix("async+").startswith(schemes):
            raise ValueError("use a redis://, rediss://, redis+unix:// or redis+cluster:// URL "
                             "(Redis Sentinel is not supported).")
        return value

    @field_validator("tron_xpub")
    @classmethod
    def _tron_xpub(cls, value: str | None) -> str | None:
        if value is not None:
            try:  # the rule lives where the key is parsed: account level, hardened, public
                DepositAddresses(value)
            except InvalidExtendedKey as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            try:  # the format's rule lives with the keys; the message never holds key material
                KeyRing.parse(value.get_secret_value())
            except EnvelopeError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's own rule for secret_token: setWebhook refuses anything else.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1 to 256 characters, each a letter, digit, _ or - "
                             "(Telegram's rule for a webhook secret token).")
        return value

    @model_validator(mode="after")
    def _quorums(self) -> Settings:
        for chain in ("ton", "tron"):
            providers: list[ChainProvider] = getattr(self, f"{chain}_providers")
            quorum: int = getattr(self, f"{chain}_quorum")
            names = [p.name for p in providers]
            bare = [p.name for p in providers if not p.urls]
            if bare and self.network != "devnet":
                raise ValueError(f"KRYPTON_{chain.upper()}_PROVIDERS: provider {bare[0]!r} needs urls.")
            if len(set(names)) != len(names):
                raise ValueError(f"KRYPTON_{chain.upper()}_PROVIDERS: each provider needs its own name.")
            if quorum > max(1, len(providers)):
                raise ValueError(f"KRYPTON_{chain.upper()}_QUORUM is {quorum} but only "
                                 f"{max(1, len(providers))} {chain} provider(s) are configured: the "
                                 f"quorum must be from 1 to the number of KRYPTON_{chain.upper()}_PROVIDERS.")
        return self

    @model_validator(mode="after")
    def _telegram_secret_with_token(self) -> Settings:
        # With a real bot the secret is registered with Telegram by the operator
        # (setWebhook), so it must be known to them: a derived one would be invisible.
        if self.telegram_bot_token is not None and self.telegram_webhook_secret is None:
            raise ValueError("KRYPTON_TELEGRAM_WEBHOOK_SECRET is required with "
                             "KRYPTON_TELEGRAM_BOT_TOKEN: give setWebhook the same secret_token.")
        return self

    @property
    def telegram_bot(self) -> bool:
        """Whether Telegram Stars has a Bot API: a token, or the devnet's fake."""
        return self.telegram_bot_token is not None or self.network == "devnet"

    @property
    def rates_mode(self) -> Literal["static", "live"]:
        return self.rates or ("static" if self.network == "devnet" else "live")

    @model_validator(mode="after")
    def _public_url_default(self) -> Settings:
        # Unset, it is where this server listens, so `krypton devnet …` and the links in
        # responses reach the same server `krypton serve` starts with these settings.
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.public_url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"
        return self

    @property
    def ton_receiving_address(self) -> str | None:
        return self.ton_address or (DEVNET_TON_ADDRESS if self.network == "devnet" else None)

    @property
    def fee_collector_owner_address(self) -> str | None:
        return self.fee_collector_owner or self.ton_receiving_address

    @property
    def tron_account_xpub(self) -> str | None:
        return self.tron_xpub or (DEVNET_TRON_XPUB if self.network == "devnet" else None)

    @property
    def signer_socket_path(self) -> Path:
        return self.signer_socket or self.data_dir / "signer.sock"

    @property
    def devnet_base(self) -> str:
        """Where the devnet's APIs are mounted, for a process that does not host it."""
        return (self.devnet_url or self.public_url).rstrip("/") + "/devnet"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'krypton.sqlite3').resolve()}"

    @property
    def backups_path(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"
