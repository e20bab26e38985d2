"""adapters/tonconnect/proof.py: ton_proof verification, on a published vector
(tonutils-go's test data) and on wallets built here with a generated key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from krypton.adapters.chains.ton.address import TonAddress, parse
from krypton.adapters.chains.ton.cells import cell_to_boc
from krypton.adapters.signer import wallet
from krypton.adapters.tonconnect import proof as p
from krypton.adapters.tonconnect.payloads import PayloadSigner

FIXTURE = Path(__file__).parents[2] / "fixtures" / "ton" / "tonproof-tonutils-go-testdata.json"
DOMAIN = "shop.example"
NOW = 1_800_000_000


def _vector() -> tuple[TonAddress, p.Proof, str]:
    data = json.loads(FIXTURE.read_text())
    raw = data["proof"]
    proof = p.Proof(raw["timestamp"], raw["domain"]["value"], raw["payload"],
                    p.parse_signature(raw["signature"]))
    return parse(data["address"], network="mainnet"), proof, data["state_init"]


def test_published_vector_verifies() -> None:
    address, proof, init = _vector()
    key = p.verify(address, proof, init, domain="ton-connect.github.io", now=1747303900, max_age=1800)
    assert key.hex() == "a7a90c382278cf441d29db4abcbbe87e55e626f8ff826c36ea2cf1e089869d8b"


def test_published_vector_with_one_flipped_payload_byte_fails() -> None:
    address, proof, init = _vector()
    forged = p.Proof(proof.timestamp, proof.domain, "1747303886:", proof.signature)
    with pytest.raises(p.InvalidProof) as err:
        p.verify(address, forged, init, domain="ton-connect.github.io", now=1747303900, max_age=1800)
    assert err.value.reason is p.Reason.BAD_SIGNATURE


def _signed(version: wallet.WalletVersion, key: SigningKey, *, domain: str = DOMAIN,
            timestamp: int = NOW - 10, payload: str = "abc") -> tuple[TonAddress, p.Proof, str]:
    public = bytes(key.verify_key)
    wallet_id = wallet.default_wallet_id(version, "mainnet")
    init = wallet.state_init(version, public, wallet_id)
    address = wallet.wallet_address(version, public, wallet_id)
    unsigned = p.Proof(timestamp, domain, payload, b"")
    signature = key.sign(p.digest(address, unsigned)).signature
    return address, p.Proof(timestamp, domain, payload, signature), cell_to_boc(init)


@pytest.mark.parametrize("version", list(wallet.WalletVersion))
def test_generated_wallet_proof_verifies_and_returns_its_key(version: wallet.WalletVersion) -> None:
    key = SigningKey.generate()
    address, proof, init = _signed(version, key)
    assert p.verify(address, proof, init, domain=DOMAIN, now=NOW, max_age=300) == bytes(key.verify_key)


def test_wrong_domain_is_refused() -> None:
    address, proof, init = _signed(wallet.WalletVersion.V4R2, SigningKey.generate(), domain="evil.example")
    with pytest.raises(p.InvalidProof, match=r"evil\.example") as err:
        p.verify(address, proof, init, domain=DOMAIN, now=NOW, max_age=300)
    assert err.value.reason is p.Reason.WRONG_DOMAIN


def test_stale_and_future_timestamps_are_refused() -> None:
    key = SigningKey.generate()
    address, old, init = _signed(wallet.WalletVersion.V5R1, key, timestamp=NOW - 301)
    with pytest.raises(p.InvalidProof) as err:
        p.verify(address, old, init, domain=DOMAIN, now=NOW, max_age=300)
    assert err.value.reason is p.Reason.STALE
    address, ahead, init = _signed(wallet.WalletVersion.V5R1, key, timestamp=NOW + 120)
    with pytest.raises(p.InvalidProof) as err:
        p.verify(address, ahead, init, domain=DOMAIN, now=NOW, max_age=300)
    assert err.value.reason is p.Reason.FUTURE


def test_signature_by_another_key_is_refused() -> None:
    address, proof, init = _signed(wallet.WalletVersion.V4R2, SigningKey.generate())
    other = SigningKey.generate().sign(p.digest(address, proof)).signature
    with pytest.raises(p.InvalidProof) as err:
        p.verify(address, p.Proof(proof.timestamp, proof.domain, proof.payload, other), init,
                 domain=DOMAIN, now=NOW, max_age=300)
    assert err.value.reason is p.Reason.BAD_SIGNATURE


def test_address_not_matching_state_init_is_refused() -> None:
    """An attacker's own wallet state_init and key, claiming the victim's address."""
    victim, _, _ = _signed(wallet.WalletVersion.V4R2, SigningKey.generate())
    attacker = SigningKey.generate()
    _, _, attacker_init = _signed(wallet.WalletVersion.V4R2, attacker)
    unsigned = p.Proof(NOW - 10, DOMAIN, "abc", b"")
    forged = p.Proof(NOW - 10, DOMAIN, "abc", attacker.sign(p.digest(victim, unsigned)).signature)
    with pytest.raises(p.InvalidProof) as err:
        p.verify(victim, forged, attacker_init, domain=DOMAIN, now=NOW, max_age=300)
    assert err.value.reason is p.Reason.ADDRESS_MISMATCH


def test_without_state_init_the_chain_key_is_used_and_none_means_unknown() -> None:
    key = SigningKey.generate()
    address, proof, _ = _signed(wallet.WalletVersion.V4R2, key)
    assert p.verify(address, proof, None, domain=DOMAIN, now=NOW, max_age=300,
                    public_key=bytes(key.verify_key)) == bytes(key.verify_key)
    with pytest.raises(p.InvalidProof) as err:
        p.verify(address, proof, None, domain=DOMAIN, now=NOW, max_age=300)
    assert err.value.reason is p.Reason.UNKNOWN_WALLET


def test_message_layout_matches_the_spec() -> None:
    address = TonAddress(-1, bytes(range(32)))
    built = p.message(address, p.Proof(0x0102, "ab", "xy", b""))
    assert built == (b"ton-proof-item-v2/" + b"\xff\xff\xff\xff" + bytes(range(32))
                     + b"\x02\x00\x00\x00" + b"ab" + b"\x02\x01" + b"\x00" * 6 + b"xy")


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"short").decode()])
def test_malformed_signature_is_refused(text: str) -> None:
    with pytest.raises(p.InvalidProof) as err:
        p.parse_signature(text)
    assert err.value.reason is p.Reason.MALFORMED


def test_garbage_state_init_is_malformed() -> None:
    address, proof, _ = _signed(wallet.WalletVersion.V4R2, SigningKey.generate())
    with pytest.raises(p.InvalidProof) as err:
        p.verify(address, proof, "AAAA", domain=DOMAIN, now=NOW, max_age=300)
    assert err.value.reason is p.Reason.MALFORMED


@pytest.mark.parametrize("payload", ["1800000000.\u0661\u0662.mac", "\u0661800000000.bm9uY2U.mac",
                                     "x" * 200, ""])
def test_payloads_not_ours_are_malformed_not_crashes(payload: str) -> None:
    signer = PayloadSigner(bytes(32))
    with pytest.raises(p.InvalidProof) as err:
        signer.check(payload, NOW)
    assert err.value.reason is p.Reason.MALFORMED


def test_an_issued_payload_checks_until_it_expires() -> None:
    signer = PayloadSigner(bytes(32))
    payload = signer.issue(NOW, 60)
    nonce, expires = signer.check(payload, NOW + 59)
    assert expires == NOW + 60 and nonce in payload
    with pytest.raises(p.InvalidProof) as err:
        signer.check(payload, NOW + 60)
    assert err.value.reason is p.Reason.STALE
    with pytest.raises(p.InvalidProof):
        PayloadSigner(bytes([1]) * 32).check(payload, NOW)  # another server's key
