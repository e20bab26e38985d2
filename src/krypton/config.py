"""Settings, read once at start-up from KRYPTON_* environment variables and passed down."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from krypton.domain import money
from krypton.domain.invoice import validate_expiry

# Devnet defaults: public, well-known values that hold no money on any real chain.
DEVNET_TON_ADDRESS = "0:" + "d3" * 32
DEVNET_TRON_XPUB = ("xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoHVn8WNqS7"
                    "dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KRYPTON_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Folder for the embedded SQLite database.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL, e.g. postgresql+asyncpg://user@host/db; "
        "default: SQLite in data_dir.")
    redis_url: str | None = Field(
        None, description="Redis for shared rate-limit counters; default: in-process memory.")
    host: str = Field("127.0.0.1", description="Address `krypton serve` listens on.")
    port: int = Field(8000, description="Port `krypton serve` listens on.")
    public_url: str = Field("http://127.0.0.1:8000", description="Base URL payers reach.")
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
    provider_timeout_seconds: float = Field(10.0, description="Timeout of each chain provider call.")
    watch_interval_seconds: float = Field(2.0, description="Pause between chain polls when idle.")
    devnet_ton_block_seconds: float = Field(1.0, description="Devnet TON block interval.")
    devnet_tron_block_seconds: float = Field(3.0, description="Devnet Tron block interval.")
    auto_migrate: bool = Field(
        True, description="Apply migrations at start-up (always on for the SQLite default).")
    usd_rates: dict[str, str] = Field(
        {"TON": "5.00", "USDT": "1.00", "XTR": "0.013"},
        description="Static USD rates per whole unit (JSON). Labelled static: not live prices.")
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
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug, info, warning or error.")

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
            money.parse_rate(value[currency])
        return value

    @field_validator("invoice_expiry_seconds")
    @classmethod
    def _expiry(cls, value: int) -> int:
        validate_expiry(timedelta(seconds=value))
        return value

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
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'krypton.sqlite3').resolve()}"
