"""Access tokens: HS256 JWTs that expire by the injected clock with no leeway, and refuse
tampering, other keys, other algorithms ("none" included) and other audiences."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from krypton.adapters.auth.tokens import AUDIENCE, JwtTokens
from krypton.domain.roles import Role, grants_of
from krypton.domain.users import ACCESS_TTL, UserPrincipal
from tests.support.clock import ManualClock

KEY = "k" * 32 + "-a-test-signing-key"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PRINCIPAL = UserPrincipal("usr_1", Role.DEVELOPER, "mer_1", "ses_1", "c" * 64, NOW + ACCESS_TTL)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def tokens(clock: ManualClock) -> JwtTokens:
    return JwtTokens(KEY, clock.now)


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_token_says_who_until_when(tokens: JwtTokens) -> None:
    token = tokens.issue(PRINCIPAL, NOW)
    assert tokens.verify(token) == PRINCIPAL
    claims = claims_of(token)
    assert claims == {"sub": "usr_1", "role": "developer", "merchant": "mer_1",
                      "scopes": sorted(grants_of(Role.DEVELOPER)), "iat": int(NOW.timestamp()),
                      "exp": int(NOW.timestamp()) + 600, "jti": claims["jti"], "sid": "ses_1",
                      "csrf": "c" * 64, "aud": AUDIENCE}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims_of(tokens.issue(PRINCIPAL, NOW))["jti"] != claims["jti"]


def test_it_expires_by_the_clock_exactly_at_exp(tokens: JwtTokens, clock: ManualClock) -> None:
    token = tokens.issue(PRINCIPAL, NOW)
    clock.advance(minutes=10, seconds=-1)
    assert tokens.verify(token) == PRINCIPAL
    clock.advance(seconds=1)
    assert tokens.verify(token) is None


def test_an_operator_token_carries_no_merchant(tokens: JwtTokens) -> None:
    operator = UserPrincipal("usr_2", Role.OPERATOR, None, "ses_2", "d" * 64, NOW + ACCESS_TTL)
    assert tokens.verify(tokens.issue(operator, NOW)) == operator


def test_a_changed_payload_or_signature_is_refused(tokens: JwtTokens) -> None:
    header, payload, signature = tokens.issue(PRINCIPAL, NOW).split(".")
    owner = b64({**claims_of(f"{header}.{payload}.{signature}"), "role": "owner"})
    assert tokens.verify(f"{header}.{owner}.{signature}") is None
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert tokens.verify(f"{header}.{payload}.{flipped}") is None
    assert tokens.verify(f"{header}.{payload}.") is None
    for junk in ("", "not-a-jwt", "a.b.c", "...."):
        assert tokens.verify(junk) is None


def test_alg_none_is_refused(tokens: JwtTokens) -> None:
    claims = claims_of(tokens.issue(PRINCIPAL, NOW))
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({**claims, 'role': 'owner'})}."
    assert tokens.verify(unsigned) is None
    assert tokens.verify(jwt.encode(claims, None, algorithm="none")) is None


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # our key, on purpose
def test_another_algorithm_with_our_key_is_refused(tokens: JwtTokens) -> None:
    claims = claims_of(tokens.issue(PRINCIPAL, NOW))
    assert tokens.verify(jwt.encode(claims, KEY, algorithm="HS512")) is None
    assert tokens.verify(jwt.encode(claims, KEY, algorithm="HS384")) is None


def test_another_key_or_audience_is_refused(tokens: JwtTokens, clock: ManualClock) -> None:
    other = JwtTokens("x" * 48, clock.now)
    assert tokens.verify(other.issue(PRINCIPAL, NOW)) is None
    claims = claims_of(tokens.issue(PRINCIPAL, NOW))
    assert tokens.verify(jwt.encode({**claims, "aud": "elsewhere"}, KEY, algorithm="HS256")) is None


@pytest.mark.parametrize("change", [
    {"exp": None}, {"sub": None}, {"jti": None}, {"sid": None}, {"csrf": None}, {"role": None},
    {"iat": None}, {"role": "admin"}, {"sub": 7}, {"merchant": 5}, {"exp": "later"}, {"exp": True},
])
def test_a_missing_or_malformed_claim_is_refused(tokens: JwtTokens, change: dict[str, Any]) -> None:
    claims = {**claims_of(tokens.issue(PRINCIPAL, NOW)), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    assert tokens.verify(jwt.encode(claims, KEY, algorithm="HS256")) is None


def test_a_token_without_the_merchant_claim_is_refused(tokens: JwtTokens) -> None:
    claims = claims_of(tokens.issue(PRINCIPAL, NOW))
    del claims["merchant"]
    assert tokens.verify(jwt.encode(claims, KEY, algorithm="HS256")) is None


def test_rights_come_from_the_role_not_the_scopes_claim(tokens: JwtTokens) -> None:
    claims = claims_of(tokens.issue(PRINCIPAL, NOW))
    boosted = jwt.encode({**claims, "scopes": ["users:manage"]}, KEY, algorithm="HS256")
    verified = tokens.verify(boosted)
    assert verified is not None and "users:manage" not in verified.grants


def test_a_short_key_is_refused_with_a_sentence(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="has 31 bytes; give at least 32 random bytes"):
        JwtTokens("k" * 31, clock.now)


def test_a_token_issued_later_than_the_clock_still_expires_by_its_exp(
        tokens: JwtTokens, clock: ManualClock) -> None:
    later = NOW + timedelta(hours=1)
    token = tokens.issue(UserPrincipal("usr_1", Role.VIEWER, "mer_1", "s", "c", later + ACCESS_TTL),
                         later)
    assert tokens.verify(token) is not None
    clock.advance(hours=1, minutes=10)
    assert tokens.verify(token) is None
