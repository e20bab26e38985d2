"""The signer end to end on the devnet, on SQLite and PostgreSQL: its Unix socket, the
policy, the outbox, batching, recovery after a crash, and no key material in the API."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from krypton.adapters.db import tables as t
from krypton.adapters.signer import keystore
from krypton.adapters.signer.chain import WalletChain
from krypton.adapters.signer.client import SignerClient, Transfer
from krypton.adapters.signer.outbox import Outbox
from krypton.adapters.signer.server import Signer, SocketServer, parse_request
from krypton.adapters.signer.wallet import HotWallet, WalletVersion
from krypton.bootstrap import Container, build
from krypton.config import Settings
from krypton.devnet import Devnet, create_devnet_app
from krypton.devnet.ton import payer_address
from krypton.domain.signer_policy import Limits, Policy, TransferRequest
from tests.support.clock import ManualClock

TON = 10**9
SEED = bytes(range(32))
ALICE, BOB, CAROL = (payer_address(n) for n in ("alice", "bob", "carol"))
BASE = "http://devnet/toncenter/api/v3"


class Crash(Exception):
    """The signer process dies here."""


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ks", dir="/tmp"))  # a socket path must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def devnet(clock: ManualClock) -> Devnet:
    return Devnet(clock.now, seed="signer-tests")


@pytest.fixture
async def http(devnet: Devnet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_devnet_app(devnet)),
                                 base_url="http://devnet") as client:
        yield client


@pytest.fixture
def wallet(devnet: Devnet) -> HotWallet:
    hot = HotWallet(SEED, WalletVersion.V5R1, network="devnet")
    devnet.ton.fund(hot.address, 1_000 * TON)  # deployed by the signer's first external
    return hot


def make_signer(container: Container, http: httpx.AsyncClient, wallet: HotWallet) -> Signer:
    policy = Policy({"TON": Limits(per_transfer=10 * TON, per_day=25 * TON)})
    return Signer(wallet, WalletChain(http, BASE), Outbox(container.db, wallet.address.raw), policy,
                  container.deps.clock, container.deps.ids.new, network="devnet")


@pytest.fixture
async def signer(container: Container, http: httpx.AsyncClient, wallet: HotWallet) -> Signer:
    return make_signer(container, http, wallet)


@pytest.fixture
async def client(signer: Signer, socket_dir: Path) -> AsyncIterator[SignerClient]:
    server = SocketServer(signer, socket_dir / "signer.sock")
    await server.start()
    yield SignerClient(socket_dir / "signer.sock")
    await server.close()


async def ledger_entry(container: Container, amount: int, kind: str = "payout", asset: str = "TON") -> int:
    """A journal entry that sends `amount` out: what payouts will write before asking the signer."""
    async with container.db.writer.connect() as conn:
        await conn.begin()
        result = await conn.execute(t.journal_entries.insert().values(
            kind=kind, reference=f"ref-{os.urandom(4).hex()}", created_at=container.deps.clock.now(),
        ).returning(t.journal_entries.c.id))
        entry_id = int(result.scalar_one())
        await conn.execute(t.postings.insert(), [
            {"entry_id": entry_id, "account": f"merchant:mer_1:{asset}", "asset": asset, "amount": -amount},
            {"entry_id": entry_id, "account": f"external:{asset}", "asset": asset, "amount": amount}])
        await conn.commit()
    return entry_id


async def payout(container: Container, request_id: str, to: str, amount: int, **change: object) -> Transfer:
    fields: dict[str, object] = {"request_id": request_id, "kind": "payout", "asset": "TON", "amount": amount,
                                 "destination": to, "destination_kind": "merchant_wallet",
                                 "ledger_entry_id": await ledger_entry(container, amount)}
    fields.update(change)
    return Transfer(**fields)  # type: ignore[arg-type]


async def queued(signer: Signer, count: int) -> None:
    for _ in range(200):  # the client's requests reach the queue over the socket
        if len(signer._queue) >= count:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{count} requests never reached the queue")


async def land(signer: Signer, http: httpx.AsyncClient) -> None:
    assert (await http.post("/control/blocks", json={"chain": "ton"})).status_code == 200
    assert await signer.reconcile()


async def statuses(container: Container) -> list[tuple[str, str, int]]:
    c = t.signer_transfers.c
    async with container.db.reader.connect() as conn:
        rows = (await conn.execute(sa.select(c.request_id, c.status, c.seqno).order_by(c.request_id))).all()
    return [(r.request_id, r.status, int(r.seqno)) for r in rows]


async def test_a_batch_of_three_payouts_goes_out_in_one_external(
        container: Container, signer: Signer, client: SignerClient, devnet: Devnet,
        http: httpx.AsyncClient, wallet: HotWallet, socket_dir: Path) -> None:
    assert stat.S_IMODE((socket_dir / "signer.sock").stat().st_mode) == 0o600
    before = {a: devnet.ton.balance(a) for a in (ALICE, BOB, CAROL)}
    transfers = [await payout(container, f"po_{i}", a.raw, (i + 1) * TON)
                 for i, a in enumerate((ALICE, BOB, CAROL))]
    call = asyncio.create_task(client.transfer(*transfers))
    await queued(signer, 3)
    await signer.send_batch()
    results = await call

    assert [r["status"] for r in results] == ["broadcast"] * 3
    assert len({r["message_hash"] for r in results}) == 1  # one external for the three
    await land(signer, http)
    assert {a: devnet.ton.balance(a) - before[a] for a in (ALICE, BOB, CAROL)} == {
        ALICE: TON, BOB: 2 * TON, CAROL: 3 * TON}
    assert devnet.ton.balance(wallet.address) == 994 * TON
    assert await statuses(container) == [("po_0", "confirmed", 0), ("po_1", "confirmed", 0),
                                         ("po_2", "confirmed", 0)]
    audit = await Outbox(container.db, wallet.address.raw).audit()
    assert sorted(a.request["request_id"] for a in audit) == ["po_0", "po_1", "po_2"]
    assert {a.message_hash for a in audit} == {results[0]["message_hash"]}
    assert (await client.status("po_1"))["status"] == "confirmed"


async def test_refusals(container: Container, signer: Signer, client: SignerClient) -> None:
    alice = ALICE.raw
    over = await payout(container, "big", alice, 11 * TON)
    [result] = await client.transfer(over)
    assert (result["status"], result["refusal"]) == ("refused", "over_transfer_limit")

    # Per-day: 10 + 10 signed, then 6 more is over 25 (queued requests count too).
    first = [await payout(container, f"d{i}", alice, 10 * TON) for i in range(2)]
    call = asyncio.create_task(client.transfer(*first))
    await queued(signer, 2)
    await signer.send_batch()
    assert [r["status"] for r in await call] == ["broadcast", "broadcast"]
    [day] = await client.transfer(await payout(container, "d2", alice, 6 * TON))
    assert day["refusal"] == "over_daily_limit" and "per-day limit" in day["reason"]

    [unknown] = await client.transfer(await payout(container, "u1", alice, TON, destination_kind="exchange"))
    assert (unknown["refusal"], unknown["request_id"]) == ("invalid_request", "u1")
    assert "destination_kind must be one of" in unknown["reason"]
    [wrong] = await client.transfer(await payout(container, "u2", alice, TON, destination_kind="treasury"))
    assert wrong["refusal"] == "destination_kind_not_allowed"
    [missing] = await client.transfer(await payout(container, "m1", alice, TON, ledger_entry_id=999_999))
    assert missing["refusal"] == "ledger_entry_missing"
    odd = dataclasses.replace(await payout(container, "m2", alice, TON), amount=2)
    [mismatch] = await client.transfer(odd)
    assert mismatch["refusal"] == "ledger_entry_mismatch"
    [replayed] = await client.transfer(await payout(container, "d0", alice, TON))
    assert replayed["refusal"] == "replayed_request"
    floating = dataclasses.replace(await payout(container, "f1", alice, TON), amount=1.5)  # type: ignore[arg-type]
    [floaty] = await client.transfer(floating)
    assert floaty["refusal"] == "invalid_request" and "positive integer" in floaty["reason"]
    assert [s[0] for s in await statuses(container)] == ["d0", "d1"]  # nothing else was signed


async def test_a_crash_between_record_and_broadcast_sends_exactly_once(
        container: Container, signer: Signer, devnet: Devnet, http: httpx.AsyncClient,
        wallet: HotWallet) -> None:
    async def crash() -> None:
        raise Crash
    signer.after_record = crash
    call = asyncio.create_task(signer.submit([await _request(container, "po_c", 4 * TON)]))
    await queued(signer, 1)
    with pytest.raises(Crash):
        await signer.send_batch()
    call.cancel()  # the process is gone, and its client with it
    assert await statuses(container) == [("po_c", "recorded", 0)]
    assert devnet.ton.wallet(wallet.address) is None  # nothing reached the chain

    restarted = make_signer(container, http, wallet)  # a new process: the same key, the same outbox
    assert not await restarted.reconcile()  # not on chain yet: the SAME BOC is broadcast again
    assert not await restarted.reconcile()  # and again, harmlessly: its seqno is spent
    await land(restarted, http)
    assert devnet.ton.balance(ALICE) - 1_000_000 * TON == 4 * TON  # sent once
    externals = [tx for tx in devnet.ton.transactions(wallet.address) if tx.in_msg.source is None]
    assert len(externals) == 1
    assert await statuses(container) == [("po_c", "confirmed", 0)]


async def test_an_external_that_expired_unseen_is_signed_again_with_the_same_transfers(
        container: Container, signer: Signer, devnet: Devnet, http: httpx.AsyncClient,
        wallet: HotWallet, clock: ManualClock) -> None:
    async def crash() -> None:
        raise Crash
    signer.after_record = crash
    call = asyncio.create_task(signer.submit([await _request(container, "po_e", 2 * TON)]))
    await queued(signer, 1)
    with pytest.raises(Crash):
        await signer.send_batch()
    call.cancel()
    clock.advance(seconds=61)
    # The chain's time passes valid_until with the next block.
    assert (await http.post("/control/blocks", json={"chain": "ton"})).status_code == 200

    restarted = make_signer(container, http, wallet)
    assert not await restarted.reconcile()  # re-signed (attempt 2) and broadcast
    await land(restarted, http)
    assert devnet.ton.balance(ALICE) - 1_000_000 * TON == 2 * TON
    assert await statuses(container) == [("po_e", "confirmed", 0)]
    audit = await Outbox(container.db, wallet.address.raw).audit()
    assert len(audit) == 2 and audit[0].message_hash != audit[1].message_hash  # both signatures logged


async def _request(container: Container, request_id: str, amount: int) -> TransferRequest:
    return parse_request((await payout(container, request_id, ALICE.raw, amount)).as_json(), "devnet")


async def test_the_api_process_holds_no_key_material(
        settings: Settings, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    words = keystore.generate_mnemonic()
    key = keystore.private_key(words)
    hot = HotWallet(key, WalletVersion.V5R1, network="devnet")
    keystore.create(tmp_path / "signer.key", words, "a long passphrase", address=hot.address.raw,
                    version="v5r1", params=keystore.KdfParams(1, 8_192, 1))
    monkeypatch.setenv("KRYPTON_SIGNER_ADDRESS", hot.address.raw)
    api_settings = Settings(**{**settings.model_dump(), "signer_address": hot.address.raw})
    container = await build(api_settings, clock=clock)
    try:
        from krypton.web.app import create_app

        create_app(container, run_workers=False)
        visible = repr(container.settings.model_dump()) + repr(dict(os.environ))
        # Runs of words, not single ones: a lone word ("adapt") may be in any path or name.
        for secret in (key.hex(), " ".join(words), " ".join(words[:3]), " ".join(words[-3:]),
                       "a long passphrase"):
            assert secret not in visible
        names = " ".join(Settings.model_fields).lower()
        assert not any(word in names for word in ("mnemonic", "private", "passphrase", "seed"))
        assert container.devnet is not None
        assert container.devnet.ton.balance(hot.address) == 100_000 * TON  # funded by its public address
    finally:
        await container.close()
