"""Chain refunds over HTTP on SQLite and PostgreSQL: POST /api/v1/invoices/{id}/refund for
TON to the payment's source or through a claim link, the payer's page at /refund/{token}
(address given once, forged/expired/used links), Tron refused, with a real signer."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from krypton.adapters.chains.ton.address import parse
from krypton.app import ingest, invoices, merchants, refunds
from krypton.bootstrap import Container
from krypton.devnet import Devnet
from krypton.domain.assets import Chain
from krypton.domain.payment import ObservedTransfer
from krypton.domain.refund import CLAIM_VALID_FOR, NETWORK_FEES
from krypton.workers.watch import ChainWatch
from tests.app.test_crypto_refunds import ALICE, BOB, DevnetSources, RunningSigner, start_signer
from tests.conftest import auth
from tests.support.clock import ManualClock
from tests.web.helpers import error_of

API = "/api/v1"
TON = 10**9
FEE = NETWORK_FEES["TON"]


@dataclasses.dataclass
class Shop:
    container: Container
    devnet: Devnet
    signer: RunningSigner
    key: merchants.IssuedKey
    watch: ChainWatch

    async def paid(self, amount: int) -> str:
        body = (await invoices.create_invoice(
            self.container.deps, self.key.merchant_id,
            invoices.InvoiceRequest(amount=str(amount // TON), currency="TON", methods=["ton"]),
            view=lambda i: {"id": i.id})).view
        invoice = await invoices.get_invoice(self.container.deps, self.key.merchant_id, body["id"])
        assert invoice.ton_address is not None
        self.devnet.ton.pay_ton("alice", parse(invoice.ton_address, network="testnet"), amount,
                                comment=invoice.memo)
        self.devnet.produce("ton")
        await self.watch.poll()
        return invoice.id

    async def settle(self) -> None:
        """A block lands the signer's transfer; the worker's job reads the outcome."""
        self.devnet.produce("ton")
        assert await self.signer.signer.reconcile()
        await refunds.resolve_chain(self.container.deps, self.container.refund_kit())


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kw", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def shop(container: Container, merchant: merchants.IssuedKey, socket_dir: Path,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Shop]:
    devnet = container.devnet
    assert devnet is not None
    path = socket_dir / "signer.sock"
    container.settings = container.settings.model_copy(update={"signer_socket": path})
    made = container.chain_refunds

    # The payer's source address is read from the devnet's transaction (see the report:
    # payments do not keep their sender yet).
    monkeypatch.setattr(container, "chain_refunds",
                        lambda: dataclasses.replace(made(), sources=DevnetSources(devnet)))
    running = await start_signer(container, devnet, path)
    chains = container.chains()
    yield Shop(container, devnet, running, merchant, ChainWatch(container.deps, chains))
    await running.close()
    await chains.aclose()


async def test_a_ton_refund_to_the_source(api: httpx.AsyncClient, shop: Shop) -> None:
    invoice_id = await shop.paid(10 * TON)
    before = shop.devnet.ton.balance(ALICE)
    response = await api.post(f"{API}/invoices/{invoice_id}/refund", headers=auth(shop.key),
                              json={"amount": "4", "to": "source", "reason": "damaged"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["amount"], body["network_fee"], body["net_amount"], body["to"],
            body["destination"], body["claim_url"]) == ("pending", "4", "0.01", "3.99", "source",
                                                       ALICE.raw, None)
    await shop.settle()
    listed = (await api.get(f"{API}/invoices/{invoice_id}/refunds", headers=auth(shop.key))).json()
    assert [r["status"] for r in listed["data"]] == ["succeeded"]
    assert shop.devnet.ton.balance(ALICE) - before == 4 * TON - FEE
    types = (await api.get(f"{API}/events", headers=auth(shop.key))).json()["data"]
    assert {"refund.created", "refund.succeeded"} <= {e["type"] for e in types}


async def test_the_claim_link_lets_the_payer_choose_the_address_once(
        api: httpx.AsyncClient, shop: Shop) -> None:
    invoice_id = await shop.paid(10 * TON)
    response = await api.post(f"{API}/invoices/{invoice_id}/refund", headers=auth(shop.key),
                              json={"amount": "2", "to": "claim"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["destination"] is None and created["claim_expires_at"]
    path = httpx.URL(created["claim_url"]).path
    assert path.startswith("/refund/")

    page = await api.get(path)
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src 'self' 'nonce-" in csp
    assert 'name="referrer" content="no-referrer"' in page.text
    assert "1.99" in page.text and 'id="refund-form"' in page.text
    assert "Возврат" in (await api.get(path + "?lang=ru")).text

    bad = await api.post(path, json={"address": "EQ-not-an-address"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_address"
    assert bad.json()["error"]["field"] == "address"  # nothing changes: the link still works
    assert 'id="refund-form"' in (await api.get(path)).text

    before = shop.devnet.ton.balance(BOB)
    claimed = await api.post(path, json={"address": BOB.raw})
    assert claimed.status_code == 200, claimed.text
    assert (claimed.json()["state"], claimed.json()["destination"]) == ("pending", BOB.raw)
    again = await api.post(path, json={"address": ALICE.raw})
    assert again.status_code == 409 and again.json()["error"]["code"] == "claim_used"
    shown = await api.get(path)
    assert 'id="refund-form"' not in shown.text and BOB.raw in shown.text

    await shop.settle()
    assert (await api.get(path + "/status")).json()["state"] == "succeeded"
    assert shop.devnet.ton.balance(BOB) - before == 2 * TON - FEE
    # The merchant's listing no longer offers the spent link.
    listed = (await api.get(f"{API}/invoices/{invoice_id}/refunds", headers=auth(shop.key))).json()
    assert listed["data"][0]["claim_url"] is None


async def test_a_form_post_without_script_works_too(api: httpx.AsyncClient, shop: Shop) -> None:
    invoice_id = await shop.paid(10 * TON)
    created = (await api.post(f"{API}/invoices/{invoice_id}/refund", headers=auth(shop.key),
                              json={"amount": "1"})).json()
    path = httpx.URL(created["claim_url"]).path
    form = {"content-type": "application/x-www-form-urlencoded"}
    wrong = await api.post(path, content="address=nonsense", headers=form)
    assert wrong.status_code == 303 and "error=" in wrong.headers["location"]
    assert "not a TON address" in (await api.get(wrong.headers["location"])).text
    right = await api.post(path, content=f"address={BOB.raw}", headers=form)
    assert right.status_code == 303 and right.headers["location"] == path


async def test_forged_expired_and_used_links_are_refused(
        api: httpx.AsyncClient, shop: Shop, clock: ManualClock) -> None:
    invoice_id = await shop.paid(10 * TON)
    created = (await api.post(f"{API}/invoices/{invoice_id}/refund", headers=auth(shop.key),
                              json={"amount": "1"})).json()
    path = httpx.URL(created["claim_url"]).path
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    page = await api.get(forged)
    assert page.status_code == 404 and "not valid" in page.text
    refused = await api.post(forged, json={"address": BOB.raw})
    assert refused.status_code == 404
    assert (await api.get("/refund/ref_x.y.1.z")).status_code == 404

    clock.advance(seconds=int(CLAIM_VALID_FOR.total_seconds()) + 1)
    expired = await api.get(path)
    assert expired.status_code == 410 and "expired" in expired.text
    late = await api.post(path, json={"address": BOB.raw})
    assert late.status_code == 409 and late.json()["error"]["code"] == "claim_expired"
    listed = (await api.get(f"{API}/invoices/{invoice_id}/refunds", headers=auth(shop.key))).json()
    assert listed["data"][0]["destination"] is None  # nothing changed


async def test_usdt_on_tron_is_refused_with_a_sentence(api: httpx.AsyncClient, shop: Shop) -> None:
    container = shop.container
    body = (await invoices.create_invoice(
        container.deps, shop.key.merchant_id,
        invoices.InvoiceRequest(amount="10", currency="USDT", methods=["usdt_trc20"]),
        view=lambda i: {"id": i.id})).view
    invoice = await invoices.get_invoice(container.deps, shop.key.merchant_id, body["id"])
    assert invoice.tron_address is not None
    await ingest.ingest_transfer(container.deps, ObservedTransfer(
        chain=Chain.TRON, tx_id="a" * 64, index=0, asset="USDT_TRC20", amount=10 * 10**6,
        destination=invoice.tron_address, memo=None, block=1, confirmations=30), invoice.id)
    response = await api.post(f"{API}/invoices/{invoice.id}/refund", headers=auth(shop.key), json={})
    error = error_of(response, 409, "refund_unsupported")
    assert "USDT on Tron cannot be refunded" in error["message"]


async def test_a_retry_with_the_same_key_answers_the_same_refund(
        api: httpx.AsyncClient, shop: Shop) -> None:
    invoice_id = await shop.paid(10 * TON)
    headers = {**auth(shop.key), "Idempotency-Key": "refund-1"}
    first = await api.post(f"{API}/invoices/{invoice_id}/refund", headers=headers, json={"amount": "2"})
    again = await api.post(f"{API}/invoices/{invoice_id}/refund", headers=headers, json={"amount": "2"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()  # the same refund and the same claim link
    other = await api.post(f"{API}/invoices/{invoice_id}/refund", headers=headers, json={"amount": "3"})
    assert other.status_code == 422 and other.json()["error"]["field"] == "Idempotency-Key"
    listed = (await api.get(f"{API}/invoices/{invoice_id}/refunds", headers=auth(shop.key))).json()
    assert len(listed["data"]) == 1


async def test_the_worker_job_fails_unclaimed_refunds_once_their_link_expired(
        api: httpx.AsyncClient, shop: Shop, clock: ManualClock) -> None:
    from krypton.workers import loops

    [job] = loops.chain_refund_jobs(shop.container)
    assert (job.name, job.leased) == ("chain-refunds", True)
    invoice_id = await shop.paid(10 * TON)
    await api.post(f"{API}/invoices/{invoice_id}/refund", headers=auth(shop.key), json={"amount": "2"})
    assert await job.step() == 0  # still claimable
    clock.advance(seconds=int(CLAIM_VALID_FOR.total_seconds()))
    assert await job.step() == 1
    [refund] = (await api.get(f"{API}/invoices/{invoice_id}/refunds", headers=auth(shop.key))).json()["data"]
    assert refund["status"] == "failed" and "expired" in refund["failure"]
