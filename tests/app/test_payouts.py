"""Payouts end to end, on SQLite and PostgreSQL: the API, concurrent requests against one
balance, idempotency, and the real in-process signer sending them on the devnet (confirmed,
bounced back and credited)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.db.payouts import payout_book
from krypton.adapters.signer.chain import WalletChain
from krypton.adapters.signer.client import SignerClient, SignerPort
from krypton.adapters.signer.outbox import Outbox
from krypton.adapters.signer.server import Signer, SocketServer
from krypton.adapters.signer.wallet import HotWallet, WalletVersion
from krypton.app import merchants, payouts
from krypton.app.merchants import IssuedKey
from krypton.app.payouts import Batching, PayoutKit, PayoutRequest
from krypton.bootstrap import Container
from krypton.devnet import Devnet, create_devnet_app
from krypton.devnet.ton import payer_address
from krypton.domain import events, ledger
from krypton.domain.errors import Conflict, DomainError
from krypton.domain.ledger import JournalEntry, Posting
from krypton.domain.payout import PayoutStatus
from krypton.domain.scopes import Scope
from krypton.domain.signer_policy import Limits, Policy
from tests.conftest import auth

TON = 10**9
USDT = 10**6
API = "/api/v1"
SEED = bytes(range(32))
BASE = "http://devnet/toncenter/api/v3"
ALICE = payer_address("alice")
# Never deployed, in its bounceable form: the devnet bounces a bounceable message to it.
NOBODY = TonAddress(0, bytes([0x5A]) * 32)


async def credit(container: Container, merchant_id: str, asset: str, amount: int) -> None:
    """Money in the merchant's available balance, as a settlement leaves it."""
    now = container.deps.clock.now()
    async with container.deps.uow() as uow:
        await uow.ledger.post(JournalEntry("test_credit", container.deps.ids.new("crd"), (
            Posting(ledger.external(asset), asset, -amount),
            Posting(ledger.merchant_account(merchant_id, asset), asset, amount))), now)
        await uow.commit()


async def balances(container: Container, merchant_id: str, asset: str = "TON") -> tuple[int, int]:
    """(available, payouts pending)."""
    async with container.deps.uow(write=False) as uow:
        found = await uow.ledger.balances()
    return (found.get((ledger.merchant_account(merchant_id, asset), asset), 0),
            found.get((ledger.payouts_pending(merchant_id, asset), asset), 0))


async def payout_events(container: Container, subject: str) -> list[str]:
    async with container.deps.uow(write=False) as uow:
        return [e.type for e in await uow.events.read((0, 0), 10_000) if e.subject_id == subject]


# --- requests over the API ------------------------------------------------------------------

async def test_fifty_concurrent_payouts_against_a_balance_for_ten(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    await credit(container, merchant.merchant_id, "TON", 10 * TON)
    body = {"asset": "TON", "amount": "1", "destination": ALICE.raw}

    answers = await asyncio.gather(*(api.post(f"{API}/payouts", json=body, headers=auth(merchant))
                                      for _ in range(50)))

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 10 + [409] * 40
    refused = next(a.json() for a in answers if a.status_code == 409)
    assert refused["error"]["code"] == "insufficient_balance"
    assert "does not cover this payout" in refused["error"]["message"]
    assert await balances(container, merchant.merchant_id) == (0, 10 * TON)
    listed = (await api.get(f"{API}/payouts?limit=100", headers=auth(merchant))).json()
    assert len(listed["data"]) == 10 and {p["status"] for p in listed["data"]} == {"requested"}


async def test_a_payout_request_is_idempotent(api: httpx.AsyncClient, container: Container,
                                              merchant: IssuedKey) -> None:
    await credit(container, merchant.merchant_id, "TON", 5 * TON)
    body = {"asset": "TON", "amount": "2.5", "destination": ALICE.raw, "description": "May"}
    headers = {**auth(merchant), "Idempotency-Key": "payout-may"}

    first = await api.post(f"{API}/payouts", json=body, headers=headers)
    again = await api.post(f"{API}/payouts", json=body, headers=headers)
    other = await api.post(f"{API}/payouts", json={**body, "amount": "1"}, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["amount"] == "2.5" and first.json()["status"] == "requested"
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await balances(container, merchant.merchant_id) == (int(2.5 * TON), int(2.5 * TON))
    got = await api.get(f"{API}/payouts/{first.json()['id']}", headers=auth(merchant))
    assert got.json() == first.json()


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"destination": "EQnot-an-address"}, "destination", "characters long"),
    ({"amount": "0"}, "amount", "greater than zero"),
    ({"amount": "1.0000000001"}, "amount", ""),
    ({"asset": "USDT_TRC20"}, "asset", ""),
])
async def test_bad_requests_are_refused_with_a_sentence(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey,
        change: dict[str, str], field: str, words: str) -> None:
    await credit(container, merchant.merchant_id, "TON", 5 * TON)
    body = {"asset": "TON", "amount": "1", "destination": ALICE.raw, **change}
    answer = await api.post(f"{API}/payouts", json=body, headers=auth(merchant))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert words in error["message"] and error.get("field", field) == field
    assert await balances(container, merchant.merchant_id) == (5 * TON, 0)


def test_a_mainnet_address_is_refused_on_testnet_and_the_reverse() -> None:
    from krypton.web.api.payouts import destination
    mainnet = ALICE.friendly(bounceable=False, testnet=False)
    testnet = ALICE.friendly(bounceable=False, testnet=True)
    assert destination(mainnet, "mainnet") == mainnet
    assert destination(testnet, "testnet") == testnet
    with pytest.raises(DomainError, match="testnet address"):
        destination(testnet, "mainnet")
    with pytest.raises(DomainError, match="mainnet address"):
        destination(mainnet, "testnet")


async def test_only_owners_and_keys_with_the_scope_may_pay_out(
        api: httpx.AsyncClient, container: Container, merchant: IssuedKey) -> None:
    await credit(container, merchant.merchant_id, "TON", 5 * TON)
    reader = await merchants.create_api_key(container.deps, merchant.merchant_id,
                                            scopes=[Scope.BALANCES_READ.value])
    body = {"asset": "TON", "amount": "1", "destination": ALICE.raw}
    refused = await api.post(f"{API}/payouts", json=body, headers=auth(reader))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    assert await balances(container, merchant.merchant_id) == (5 * TON, 0)


async def test_a_payout_never_takes_the_balance_below_zero(container: Container,
                                                           merchant: IssuedKey) -> None:
    kit = PayoutKit(payout_book, None)
    await credit(container, merchant.merchant_id, "TON", TON)
    with pytest.raises(Conflict) as refused:
        await payouts.request_payout(container.deps, kit, merchant.merchant_id,
                                     PayoutRequest("TON", TON + 1, ALICE.raw))
    assert refused.value.code == "insufficient_balance" and "1 more is needed" in refused.value.message
    with pytest.raises(DomainError, match="Tron keys"):
        await payouts.request_payout(container.deps, kit, merchant.merchant_id,
                                     PayoutRequest("USDT_TRC20", 1, ALICE.raw))


# --- sent through the real signer on the devnet -------------------------------------------

@dataclass
class Rig:
    container: Container
    devnet: Devnet
    signer: Signer
    kit: PayoutKit
    http: httpx.AsyncClient
    wallet: HotWallet

    async def land(self) -> None:
        """A block on the devnet, then the signer reconciles its externals with it."""
        assert (await self.http.post("/control/blocks", json={"chain": "ton"})).status_code == 200
        assert await self.signer.reconcile()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="po", dir="/tmp"))  # a socket path must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def rig(container: Container, socket_dir: Path) -> AsyncIterator[Rig]:
    devnet = container.devnet
    assert devnet is not None
    wallet = HotWallet(SEED, WalletVersion.V5R1, network="devnet")
    devnet.ton.fund(wallet.address, 1_000 * TON)
    devnet.ton.fund_jetton(wallet.address, 100 * USDT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(devnet)),
                                 base_url="http://devnet") as http:
        policy = Policy({"TON": Limits(per_transfer=100 * TON, per_day=1_000 * TON),
                         "USDT_TON": Limits(per_transfer=10_000 * USDT, per_day=50_000 * USDT)})
        signer = Signer(wallet, WalletChain(http, BASE), Outbox(container.db, wallet.address.raw),
                        policy, container.deps.clock, container.deps.ids.new, network="devnet",
                        poll_seconds=0.01)
        server = SocketServer(signer, socket_dir / "s.sock")
        await server.start()
        sender = asyncio.create_task(signer.run())
        kit = PayoutKit(payout_book, SignerPort(SignerClient(socket_dir / "s.sock")))
        yield Rig(container, devnet, signer, kit, http, wallet)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await server.close()


async def _status(rig: Rig, payout_id: str) -> PayoutStatus:
    return (await payouts.get_payout(rig.container.deps, rig.kit, _merchant_of[payout_id],
                                     payout_id)).status


_merchant_of: dict[str, str] = {}


async def _request(rig: Rig, merchant_id: str, amount: int, to: str, asset: str = "TON") -> str:
    payout, created = await payouts.request_payout(rig.container.deps, rig.kit, merchant_id,
                                                   PayoutRequest(asset, amount, to))
    assert created
    _merchant_of[payout.id] = merchant_id
    return payout.id


async def test_payouts_are_batched_sent_and_confirmed(rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "TON", 10 * TON)
    bob = payer_address("bob")
    before = rig.devnet.ton.balance(ALICE), rig.devnet.ton.balance(bob)
    first = await _request(rig, mid, 3 * TON, ALICE.raw)
    second = await _request(rig, mid, 2 * TON, bob.raw)
    batching = Batching(every=30, size=3)
    last = deps.clock.now()

    # Two waiting of three, and the interval has not passed: nothing is sent yet.
    assert await payouts.dispatch_due(deps, rig.kit, batching, last) == 0
    assert await _status(rig, first) is PayoutStatus.REQUESTED
    # The interval passed: one signer call, one external for both.
    assert await payouts.dispatch_due(deps, rig.kit, batching, None) == 2
    assert {await _status(rig, first), await _status(rig, second)} == {PayoutStatus.SENT}
    assert await balances(rig.container, mid) == (5 * TON, 0)  # on its way: out of pending

    await rig.land()
    assert await payouts.track(deps, rig.kit) == 2
    assert await _status(rig, first) is PayoutStatus.CONFIRMED
    assert await _status(rig, second) is PayoutStatus.CONFIRMED
    assert (rig.devnet.ton.balance(ALICE) - before[0], rig.devnet.ton.balance(bob) - before[1]) == (
        3 * TON, 2 * TON)
    assert await balances(rig.container, mid) == (5 * TON, 0)
    assert await payout_events(rig.container, first) == [
        events.payout_status_event(s) for s in ("requested", "queued", "sent", "confirmed")]
    assert await payouts.track(deps, rig.kit) == 0  # final: nothing more to ask


async def test_a_full_batch_goes_at_once(rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "TON", 10 * TON)
    for _ in range(3):
        await _request(rig, mid, TON, ALICE.raw)
    # Three waiting fill a batch of two: two go now, even though the interval has not passed.
    assert await payouts.dispatch_due(deps, rig.kit, Batching(every=3600, size=2),
                                      deps.clock.now()) == 2


async def test_a_bounced_payout_fails_and_is_credited_back(rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "TON", 10 * TON)
    nowhere = NOBODY.friendly(bounceable=True, testnet=True)
    bounced = await _request(rig, mid, 4 * TON, nowhere)
    kept = await _request(rig, mid, TON, ALICE.raw)
    assert await payouts.dispatch_due(deps, rig.kit, Batching(every=0, size=10), None) == 2

    await rig.land()
    await payouts.track(deps, rig.kit)

    failed = await payouts.get_payout(deps, rig.kit, mid, bounced)
    assert failed.status is PayoutStatus.FAILED
    assert failed.failure is not None and "bounced" in failed.failure
    assert await _status(rig, kept) is PayoutStatus.CONFIRMED
    assert await balances(rig.container, mid) == (9 * TON, 0)  # the 4 TON are back
    assert rig.devnet.ton.balance(NOBODY) == 0
    assert events.payout_status_event("failed") in await payout_events(rig.container, bounced)


async def test_a_payout_the_signer_refuses_fails_and_is_credited_back(
        rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "TON", 200 * TON)
    big = await _request(rig, mid, 150 * TON, ALICE.raw)  # over the 100 TON per-transfer limit
    assert await payouts.dispatch_due(deps, rig.kit, Batching(every=0, size=10), None) == 1
    refused = await payouts.get_payout(deps, rig.kit, mid, big)
    assert refused.status is PayoutStatus.FAILED
    assert refused.failure is not None and "over_transfer_limit" in refused.failure
    assert await balances(rig.container, mid) == (200 * TON, 0)


async def test_a_crash_after_queueing_sends_once(rig: Rig, merchant: IssuedKey) -> None:
    """The dispatcher dies after the signer signed but before it recorded the answer: the
    next round finds the payout queued, asks again, and the signer's replay refusal plus its
    status tell it the payout was sent; the money leaves once."""
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "TON", 10 * TON)
    payout_id = await _request(rig, mid, 2 * TON, ALICE.raw)
    before = rig.devnet.ton.balance(ALICE)

    class Crashing(SignerPort):
        async def transfer(self, requests: Any) -> Any:
            await super().transfer(requests)
            raise RuntimeError("the dispatcher died here")

    assert isinstance(rig.kit.signer, SignerPort)
    crashing = PayoutKit(payout_book, Crashing(rig.kit.signer._client))
    with pytest.raises(RuntimeError):
        await payouts.dispatch_due(deps, crashing, Batching(every=0, size=10), None)
    assert await _status(rig, payout_id) is PayoutStatus.QUEUED

    assert await payouts.dispatch_due(deps, rig.kit, Batching(every=0, size=10), None) == 1
    assert await _status(rig, payout_id) is PayoutStatus.SENT
    await rig.land()
    await payouts.track(deps, rig.kit)
    assert await _status(rig, payout_id) is PayoutStatus.CONFIRMED
    assert rig.devnet.ton.balance(ALICE) - before == 2 * TON


async def test_usdt_on_ton_is_paid_out_as_a_jetton_transfer(rig: Rig, merchant: IssuedKey) -> None:
    """The hot wallet sends a TEP-74 transfer to its own USDT jetton wallet, which moves the
    jettons to the destination's; two in one external, told apart by their order."""
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "USDT_TON", 50 * USDT)
    bob = payer_address("bob")
    hot_before = rig.devnet.ton.jetton_balance(rig.wallet.address)
    alice_before, bob_before = rig.devnet.ton.jetton_balance(ALICE), rig.devnet.ton.jetton_balance(bob)
    first = await _request(rig, mid, 12 * USDT, ALICE.raw, "USDT_TON")
    second = await _request(rig, mid, 7_500_000, bob.raw, "USDT_TON")
    assert await payouts.dispatch_due(deps, rig.kit, Batching(every=0, size=10), None) == 2

    await rig.land()
    assert await payouts.track(deps, rig.kit) == 2

    assert await _status(rig, first) is PayoutStatus.CONFIRMED
    assert await _status(rig, second) is PayoutStatus.CONFIRMED
    assert rig.devnet.ton.jetton_balance(ALICE) - alice_before == 12 * USDT
    assert rig.devnet.ton.jetton_balance(bob) - bob_before == 7_500_000
    assert hot_before - rig.devnet.ton.jetton_balance(rig.wallet.address) == 19_500_000
    assert await balances(rig.container, mid, "USDT_TON") == (30_500_000, 0)
    # The TON attached for gas came back as excesses (the devnet charges no fees).
    assert rig.devnet.ton.balance(rig.wallet.address) == 1_000 * TON - 2


async def test_a_usdt_payout_the_hot_wallet_cannot_cover_bounces_and_is_credited_back(
        rig: Rig, merchant: IssuedKey) -> None:
    deps, mid = rig.container.deps, merchant.merchant_id
    await credit(rig.container, mid, "USDT_TON", 500 * USDT)
    too_much = await _request(rig, mid, 150 * USDT, ALICE.raw, "USDT_TON")  # the wallet holds 100
    assert await payouts.dispatch_due(deps, rig.kit, Batching(every=0, size=10), None) == 1
    await rig.land()
    await payouts.track(deps, rig.kit)
    failed = await payouts.get_payout(deps, rig.kit, mid, too_much)
    assert failed.status is PayoutStatus.FAILED and "bounced" in (failed.failure or "")
    assert await balances(rig.container, mid, "USDT_TON") == (500 * USDT, 0)
    assert rig.devnet.ton.jetton_balance(rig.wallet.address) == 100 * USDT


async def test_payouts_wait_queued_while_the_signer_is_down(container: Container,
                                                            merchant: IssuedKey) -> None:
    deps, mid = container.deps, merchant.merchant_id
    await credit(container, mid, "TON", 5 * TON)
    kit = PayoutKit(payout_book, SignerPort(SignerClient(Path("/tmp/no-signer-here.sock"))))
    payout, _ = await payouts.request_payout(deps, kit, mid, PayoutRequest("TON", 2 * TON, ALICE.raw))
    assert await payouts.dispatch_due(deps, kit, Batching(every=0, size=10), None) == 0
    assert (await payouts.get_payout(deps, kit, mid, payout.id)).status is PayoutStatus.QUEUED
    assert await payouts.track(deps, kit) == 0
    assert await balances(container, mid) == (3 * TON, 0)  # booked out, not yet sent
