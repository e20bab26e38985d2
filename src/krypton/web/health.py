"""/healthz and /readyz: what Krypton depends on, each checked, and whether it can take
payments.

/readyz is for load balancers: can this process serve requests (the database answers, and
Redis where the rate limits live there)? /healthz is for people and monitors: every
dependency, and 503 when Krypton as a whole cannot take payments: the database or Redis is
down, no process runs the chain watcher, or every provider of a chain is refused by its
circuit breaker (payments would go unseen). A signer that does not answer is reported but
takes no payment away: money goes out later, nothing comes in less.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from krypton.adapters.db import faults
from krypton.adapters.signer.client import SignerClient
from krypton.app import provider_health
from krypton.bootstrap import Container
from krypton.web import errors
from krypton.web.logs import redact_text

WATCHER_JOB = "chains"
CHECK_SECONDS = 3.0  # a dependency slower than this is reported down, not waited for
OK, DOWN, UNKNOWN = "ok", "down", "unknown"


@dataclass(frozen=True)
class Check:
    status: str  # ok | down | unknown
    detail: str | None = None
    blocks_payments: bool = True  # does it being down stop payments?

    def json(self) -> dict[str, Any]:
        return {"status": self.status, **({"detail": self.detail} if self.detail else {})}


async def readiness(container: Container, limiter: Any) -> JSONResponse:
    checks = {"database": await _database(container)}
    if container.settings.redis_url:
        checks["redis"] = await _redis(limiter)
    return _answer(checks, container)


async def health(container: Container, limiter: Any, *, runs_jobs: bool) -> JSONResponse:
    """Every dependency. `runs_jobs`: the background jobs run here (the embedded default) or
    in `krypton worker` processes (--role api); otherwise (an app built without its jobs) the
    watcher is not looked for."""
    checks = {"database": await _database(container)}
    if container.settings.redis_url:
        checks["redis"] = await _redis(limiter)
    if checks["database"].status == OK:
        if runs_jobs:
            checks["watcher"] = await _guarded(lambda: _watcher(container))
        checks.update(await _providers(container))
    if container.settings.signer_socket is not None:
        checks["signer"] = await _guarded(lambda: _signer(container), blocks_payments=False)
    return _answer(checks, container)


def _answer(checks: dict[str, Check], container: Container) -> JSONResponse:
    down = [name for name, check in checks.items() if check.status == DOWN and check.blocks_payments]
    body: dict[str, Any] = {"status": "unavailable" if down else "ok",
                            "database": container.db.dialect,
                            "checks": {name: check.json() for name, check in checks.items()}}
    if not down:
        return JSONResponse(body)
    body["down"] = down
    reason = checks[down[0]].detail
    if reason:
        body["reason"] = reason
    return JSONResponse(body, status_code=503,
                        headers={"Retry-After": str(errors.DATABASE_RETRY_SECONDS)})


async def _guarded(check: Callable[[], Awaitable[Check]], *, blocks_payments: bool = True) -> Check:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            result = await check()
    except TimeoutError:
        result = Check(DOWN, f"no answer within {CHECK_SECONDS:g} s")
    except Exception as exc:
        result = Check(DOWN, redact_text(f"{type(exc).__name__}: {exc}"))
    return Check(result.status, result.detail, blocks_payments)


async def _database(container: Container) -> Check:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            async with container.deps.uow(write=False) as uow:
                await uow.merchants.get("mer_healthcheck")
    except TimeoutError:
        return Check(DOWN, f"no answer within {CHECK_SECONDS:g} s")
    except Exception as exc:
        reason = faults.unavailable(exc)
        if reason is None:
            raise
        return Check(DOWN, redact_text(reason))
    return Check(OK)


async def _redis(limiter: Any) -> Check:
    async def ping() -> Check:
        return Check(OK) if await limiter.storage.check() else Check(DOWN, "Redis did not answer")
    return await _guarded(ping)


async def _watcher(container: Container) -> Check:
    if WATCHER_JOB in await container.leases().running([WATCHER_JOB]):
        return Check(OK)
    return Check(DOWN, "no process runs the chain watcher: payments would go unseen")


async def _providers(container: Container) -> dict[str, Check]:
    """Per chain: down when every endpoint's fresh report says its circuit is open."""
    by_chain: dict[str, list[provider_health.ProviderStatus]] = {}
    for status in await provider_health.latest(container.deps):
        chain = _chain_of(status.snapshot.name)
        if chain is not None:
            by_chain.setdefault(chain, []).append(status)
    checks = {}
    for chain, statuses in sorted(by_chain.items()):
        fresh = [s for s in statuses if not s.stale]
        # A chain with several providers also reports its quorum (adapters/chains/quorum.py).
        unmet = [s.snapshot.last_error or "" for s in fresh if s.snapshot.state == "quorum_unmet"]
        fresh = [s for s in fresh if not s.snapshot.name.endswith("-quorum")]
        if unmet:
            checks[f"{chain}_providers"] = Check(
                DOWN, f"fewer healthy {chain} providers than the quorum: nothing is made final "
                f"({unmet[0]})")
        elif not fresh:
            checks[f"{chain}_providers"] = Check(UNKNOWN, "no recent report", blocks_payments=False)
        elif all(s.snapshot.state == "open" for s in fresh):
            checks[f"{chain}_providers"] = Check(
                DOWN, f"every {chain} provider is refused by its circuit breaker")
        else:
            checks[f"{chain}_providers"] = Check(OK)
    return checks


def _chain_of(endpoint: str) -> str | None:
    if "toncenter" in endpoint:
        return "ton"
    if "trongrid" in endpoint:
        return "tron"
    return None  # a price source: rates have their own fallbacks


async def _signer(container: Container) -> Check:
    await SignerClient(container.settings.signer_socket_path, timeout=CHECK_SECONDS).status("health")
    return Check(OK)
