"""Merchants and their API keys."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from krypton.app.deps import Deps
from krypton.app.ports import ApiKeyRecord, UnitOfWork
from krypton.domain import events
from krypton.domain.errors import DomainError, NotFound
from krypton.domain.fees import validate_bps
from krypton.domain.merchant import Merchant, validate_confirmations
from krypton.domain.scopes import Scope

# Every scope, as the plain strings a key stores (a new merchant's first key has them all).
SCOPES: tuple[str, ...] = tuple(scope.value for scope in Scope)
KEY_PREFIX = "kr_"
VISIBLE_PREFIX_LEN = 11


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    merchant_id: str
    secret: str
    prefix: str
    scopes: tuple[str, ...]


def hash_key(secret: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_scopes(scopes: Sequence[str] | None) -> tuple[str, ...]:
    if scopes is None:
        return SCOPES
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise DomainError(
            f"Unknown or missing scopes {unknown}; choose from {', '.join(SCOPES)}.", field="scopes"
        )
    # Scope members or their strings alike: a key stores the plain strings.
    return tuple(dict.fromkeys(Scope(s).value for s in scopes))


async def _issue_key(deps: Deps, uow: UnitOfWork, merchant_id: str,
                     scopes: tuple[str, ...]) -> IssuedKey:
    secret = KEY_PREFIX + deps.ids.secret()
    key = IssuedKey(deps.ids.new("key"), merchant_id, secret, secret[:VISIBLE_PREFIX_LEN], scopes)
    await uow.api_keys.add(key.id, merchant_id, key.prefix, hash_key(secret), scopes, deps.clock.now())
    return key


async def create_merchant(deps: Deps, *, name: str, fee_bps: int | None = None,
                          confirmations_override: int | None = None,
                          underpayment_tolerance_bps: int = 0,
                          methods: Sequence[str] | None = None,
                          ton_address: str | None = None) -> tuple[Merchant, IssuedKey]:
    """Create a merchant and its first API key (all scopes); the secret is shown only here.
    `ton_address`: where its TON payments go (e.g. its fee-collector contract)."""
    kwargs = {} if fee_bps is None else {"fee_bps": fee_bps}
    if methods is not None:
        kwargs["methods"] = tuple(methods)  # type: ignore[assignment]
    merchant = Merchant(deps.ids.new("mer"), name, confirmations_override=confirmations_override,
                        underpayment_tolerance_bps=underpayment_tolerance_bps,
                        ton_address=deps.rails.canonical_ton_address(ton_address) if ton_address
                        else None, **kwargs)  # type: ignore[arg-type]
    now = deps.clock.now()
    async with deps.uow() as uow:
        await uow.merchants.add(merchant, now)
        key = await _issue_key(deps, uow, merchant.id, SCOPES)
        await uow.events.append(
            events.Event(events.MERCHANT_CREATED, merchant.id, merchant.id,
                         {"name": merchant.name, "fee_bps": merchant.fee_bps}), now)
        await uow.commit()
    return merchant, key


async def create_api_key(deps: Deps, merchant_id: str,
                         scopes: Sequence[str] | None = None) -> IssuedKey:
    chosen = validate_scopes(scopes)
    async with deps.uow() as uow:
        if await uow.merchants.get(merchant_id) is None:
            raise NotFound(f"No merchant '{merchant_id}'.", field="merchant_id")
        key = await _issue_key(deps, uow, merchant_id, chosen)
        await uow.commit()
    return key


async def revoke_api_key(deps: Deps, key_id: str, merchant_id: str | None = None) -> ApiKeyRecord:
    """Revoke a key (again is fine); with `merchant_id`, only that merchant's: another
    merchant's key is as absent as a missing one. Returns the key as revoked."""
    async with deps.uow() as uow:
        record = await uow.api_keys.get(key_id)
        if record is None or (merchant_id is not None and record.merchant_id != merchant_id):
            raise NotFound(f"No API key '{key_id}'.", field="key_id")
        if record.revoked_at is None:
            now = deps.clock.now()
            await uow.api_keys.revoke(key_id, now)
            record = replace(record, revoked_at=now)
        await uow.commit()
    return record


async def list_api_keys(deps: Deps, merchant_id: str) -> Sequence[ApiKeyRecord]:
    """A merchant's keys, revoked ones included (never their secrets: only hashes are kept)."""
    async with deps.uow(write=False) as uow:
        return await uow.api_keys.for_merchant(merchant_id)


async def list_merchants(deps: Deps) -> Sequence[Merchant]:
    async with deps.uow(write=False) as uow:
        return await uow.merchants.list()


UNCHANGED: Final = object()  # a setting the request leaves as it is


async def update_settings(deps: Deps, merchant_id: str, *,
                          confirmations_override: int | object | None = UNCHANGED,
                          ton_address: str | object | None = UNCHANGED) -> Merchant:
    """Change what a merchant's owner may change: the confirmations every payment needs
    (None: each chain's default) and its own TON receiving address (None: the platform's).
    New invoices use them; an invoice keeps the address and confirmations it was made with.
    A `merchant.updated` event records what changed."""
    async with deps.uow() as uow:
        merchant = await uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFound(f"No merchant '{merchant_id}'.", field="merchant_id")
        changed: dict[str, object] = {}
        if confirmations_override is not UNCHANGED:
            assert confirmations_override is None or isinstance(confirmations_override, int)
            if confirmations_override is not None:
                validate_confirmations(confirmations_override, "confirmations_override")
            if confirmations_override != merchant.confirmations_override:
                merchant.confirmations_override = confirmations_override
                changed["confirmations_override"] = confirmations_override
        if ton_address is not UNCHANGED:
            assert ton_address is None or isinstance(ton_address, str)
            raw = deps.rails.canonical_ton_address(ton_address) if ton_address else None
            if raw != merchant.ton_address:
                merchant.ton_address = raw
                changed["ton_address"] = raw
        if changed:
            await uow.merchants.set_settings(merchant_id, merchant.confirmations_override,
                                             merchant.ton_address)
            await uow.events.append(events.Event(events.MERCHANT_UPDATED, merchant_id, merchant_id,
                                                 changed), deps.clock.now())
            await uow.commit()
    return merchant


async def set_fee(deps: Deps, merchant_id: str, fee_bps: int) -> Merchant:
    """Change a merchant's platform fee. It applies to invoices created from now on: each
    invoice keeps the fee it was created with, and TON paid through an active fee-collector
    contract keeps the fee written into the contract until a new one is deployed."""
    validate_bps(fee_bps)
    async with deps.uow() as uow:
        merchant = await uow.merchants.get(merchant_id)
        if merchant is None:
            raise NotFound(f"No merchant '{merchant_id}'.", field="merchant_id")
        if merchant.fee_bps != fee_bps:
            await uow.merchants.set_fee_bps(merchant_id, fee_bps)
            await uow.commit()
            merchant.fee_bps = fee_bps
    return merchant
