"""`krypton doctor`: the configuration Krypton would run with, one check a line.

Each line says ok or problem: the network, the database (its URL with the password
hidden, opened the way `serve` opens it), the first Tron deposit address (index 0, for the
operator to compare with the first receiving address of their wallet: a wrong xpub would
send payers to addresses nobody can spend from), the chain providers and whether the data
folder is writable. Providers are described, not contacted. Exit 1 when a check fails; a
setting that does not parse is exit 2 with its sentence, as for every command.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from krypton.adapters.chains.tron.derivation import DepositAddresses
from krypton.adapters.secrets.envelope import ENV_NAME, EnvelopeError, keyring_from
from krypton.bootstrap import build
from krypton.cli import support
from krypton.cli.support import out
from krypton.config import ChainProvider, Settings

# What the first address is, in the words of a wallet's receive screen.
FIRST_ADDRESS_PATH = "m/44'/195'/0'/0/0"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def doctor() -> None:
    """Check the configuration Krypton would run with; exit 1 if something is wrong."""
    settings = support.settings()
    folder = data_folder(settings)
    checks = [network(settings), folder,
              asyncio.run(database(settings, folder_ok=folder.ok)),
              tron_addresses(settings), *providers(settings), *rates(settings),
              secret_keys(settings, folder_ok=folder.ok), webhooks(settings)]
    for check in checks:
        mark = "[green]ok[/green]     " if check.ok else "[red]problem[/red]"
        out.print(f"{mark}  {check.name}: {check.detail}", highlight=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


def first_tron_address_line(settings: Settings) -> str | None:
    """What `serve` prints at start-up about Tron deposit addresses (None: Tron is off)."""
    first = _first_tron_address(settings)
    if first is None:
        return None
    return (f"First Tron deposit address ({FIRST_ADDRESS_PATH}): {first}; it must be the "
            "first receiving address of the wallet whose xpub is configured.")


def network(settings: Settings) -> Check:
    if settings.network == "devnet":
        return Check("network", True, "devnet, the built-in simulator: no real money moves")
    if settings.ton_receiving_address is None and settings.tron_account_xpub is None:
        return Check("network", False, f"{settings.network}, but neither KRYPTON_TON_ADDRESS nor "
                     "KRYPTON_TRON_XPUB is set: no chain payment method can be offered")
    return Check("network", True, settings.network)


def data_folder(settings: Settings) -> Check:
    folder = settings.data_dir.resolve()
    if folder.exists() and not folder.is_dir():
        return Check("data folder", False, f"{folder} is a file, not a folder")
    if not folder.exists():
        parent = next(p for p in folder.parents if p.exists())
        try:  # a folder made and removed again: os.access says yes on a read-only mount
            os.rmdir(tempfile.mkdtemp(dir=parent))
        except OSError as exc:
            return Check("data folder", False, f"{folder} does not exist and cannot be created "
                         f"in {parent} ({exc.strerror})")
        return Check("data folder", True, f"{folder} (created at start-up)")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass  # really writing, for the same reason
    except OSError as exc:
        return Check("data folder", False, f"{folder} is not writable ({exc.strerror})")
    return Check("data folder", True, f"{folder} is writable")


async def database(settings: Settings, *, folder_ok: bool) -> Check:
    url = redacted(settings.db_url)
    if settings.database_url is None and not folder_ok:
        return Check("database", False, f"{url}: not opened, the data folder is not usable")
    try:
        container = await build(settings)  # as `serve` does: migrations apply
    except Exception as exc:  # what fails is for the operator to read, whatever its type
        return Check("database", False, f"{url}: cannot be opened: {_first_line(exc)}")
    await container.close()
    return Check("database", True, url)


def tron_addresses(settings: Settings) -> Check:
    first = _first_tron_address(settings)
    if first is None:
        return Check("tron deposit addresses", True, "off: KRYPTON_TRON_XPUB is not set")
    source = "the devnet's test vector" if settings.tron_xpub is None else "KRYPTON_TRON_XPUB"
    return Check("tron deposit addresses", True, f"from {source}; the first ({FIRST_ADDRESS_PATH}) "
                 f"is {first}: compare it with the first receiving address of your wallet")


def providers(settings: Settings) -> list[Check]:
    if settings.network == "devnet":
        return [Check("providers", True, "the devnet's TON Center and TronGrid, in process")]
    checks = []
    if settings.ton_receiving_address is not None:
        checks += _chain("TON Center", settings.toncenter_urls, settings.toncenter_api_key,
                         settings.ton_providers, settings.ton_quorum)
    if settings.tron_account_xpub is not None:
        checks += _chain("TronGrid", settings.trongrid_urls, settings.trongrid_api_key,
                         settings.tron_providers, settings.tron_quorum)
    return checks


def _chain(kind: str, urls: Sequence[str], key: str | None, independent: Sequence[ChainProvider],
           quorum: int) -> list[Check]:
    """One provider (its failover URLs), or each independent one and the quorum they make."""
    if not independent:
        return [_provider(kind, urls, key)]
    checks = [_provider(f"{kind} {p.name}", p.urls, p.api_key) for p in independent]
    majority = quorum > len(independent) // 2
    checks.append(Check(f"quorum {kind}", majority,
                        f"{quorum} of {len(independent)} providers must agree before a transfer is final"
                        + ("" if majority else ": not a majority, two versions could each have it")))
    return checks


def rates(settings: Settings) -> list[Check]:
    """Where USD prices come from; live sources are listed like the chain providers."""
    if settings.rates_mode == "static":
        table = ", ".join(f"{k} {v}" for k, v in sorted(settings.usd_rates.items()))
        return [Check("usd rates", True, f"static table ({table}): prices never move")]
    if settings.network == "devnet":
        return [Check("usd rates", True, "live, from the devnet's CoinGecko and Binance fakes")]
    return [Check("usd rates", True, f"live, stale after {settings.rates_max_age_seconds:g} s"),
            _provider("CoinGecko", settings.rates_coingecko_urls, settings.rates_coingecko_api_key),
            _provider("Binance", settings.rates_binance_urls, None)]


def secret_keys(settings: Settings, *, folder_ok: bool) -> Check:
    """Where the keys for secrets at rest come from (ids only, never a key), and whether they
    can be read; the key file is created here if missing, as `serve` would."""
    configured = settings.secret_key.get_secret_value() if settings.secret_key else None
    if not configured and not folder_ok:
        return Check("secret keys", False, "the key file cannot be made: the data folder is not usable")
    try:
        ring, source = keyring_from(configured, settings.data_dir / "secret.key")
    except EnvelopeError as exc:
        return Check("secret keys", False, str(exc))
    note = "" if source == ENV_NAME or settings.database_url is None else (
        "; with PostgreSQL and processes on several machines, set KRYPTON_SECRET_KEY instead")
    return Check("secret keys", True, f"{len(ring.key_ids)} key(s) from {source}, sealing with "
                 f"{ring.current_id}{note}")


def webhooks(settings: Settings) -> Check:
    if settings.webhooks_allow_loopback:
        return Check("webhooks", True, "loopback URLs and plain http allowed "
                     "(KRYPTON_WEBHOOKS_ALLOW_LOOPBACK): development only")
    scheme = "http or https" if settings.network == "devnet" else "https only"
    return Check("webhooks", True, f"{scheme}, public addresses only, {settings.webhook_timeout_seconds:g} s "
                 "per attempt")


def redacted(url: str) -> str:
    """The database URL as it may be shown: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(not a database URL)"


def _provider(name: str, urls: Sequence[str], key: str | None) -> Check:
    hosts = [urlsplit(u).hostname for u in urls]  # never the URL: it may carry a key
    bad = [str(i + 1) for i, host in enumerate(hosts) if not host]
    if not urls or bad:
        which = "none is set" if not urls else f"number {', '.join(bad)} has no host"
        return Check(f"provider {name}", False, f"{len(urls)} URL(s), {which}")
    keyed = "with an API key" if key else "without an API key (the free rate limit applies)"
    return Check(f"provider {name}", True, f"{', '.join(h for h in hosts if h)}, {keyed}; not contacted")


def _first_tron_address(settings: Settings) -> str | None:
    xpub = settings.tron_account_xpub
    return None if xpub is None else DepositAddresses(xpub).first_address


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]

