"""Mini App initData: the real Telegram-signed sample in tests/fixtures/telegram passes both
checks, and every change to it (a field, the token, the bot id, the key, the time window,
a repeated key, a single character anywhere) is refused with its reason, or leaves the data
the same. Payloads the sample does not cover (query_id, start_param, odd users) are signed
here with a test token and a test Ed25519 key."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from krypton.adapters.telegram.init_data import (
    TELEGRAM_PUBLIC_KEY,
    TELEGRAM_TEST_PUBLIC_KEY,
    InitData,
    InvalidInitData,
    Reason,
    WebAppUser,
    verify_hmac,
    verify_signature,
    webapp_secret,
)

SAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "telegram"
     / "webapp-initdata-real-signed.json").read_text())
RAW: str = SAMPLE["init_data"]
TOKEN: str = SAMPLE["bot_token"]
BOT_ID: int = SAMPLE["bot_id"]
SIGNED_AT = datetime.fromtimestamp(SAMPLE["auth_date"], tz=UTC)
NOW = SIGNED_AT + timedelta(minutes=1)
MAX_AGE = timedelta(minutes=5)

# For payloads signed here: our own token and Ed25519 key stand in for the bot's and Telegram's.
OWN_TOKEN = "123456:test-token-for-krypton"
OWN_BOT_ID = 123456
OWN_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OWN_PUBLIC_HEX = OWN_KEY.public_key().public_bytes_raw().hex()


def by_hmac(raw: str, token: str = TOKEN, now: datetime = NOW, max_age: timedelta = MAX_AGE) -> InitData:
    return verify_hmac(raw, token, now=now, max_age=max_age)


def by_signature(raw: str, bot_id: int = BOT_ID, key: str = TELEGRAM_PUBLIC_KEY, now: datetime = NOW,
                 max_age: timedelta = MAX_AGE) -> InitData:
    return verify_signature(raw, bot_id, public_key_hex=key, now=now, max_age=max_age)


def check_string(pairs: dict[str, str]) -> str:
    return "\n".join(f"{k}={pairs[k]}" for k in sorted(pairs))


def hmac_signed(pairs: dict[str, str], token: str = OWN_TOKEN) -> str:
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    digest = hmac.new(secret, check_string(pairs).encode(), hashlib.sha256).hexdigest()
    return urlencode({**pairs, "hash": digest})


def ed25519_signed(pairs: dict[str, str], bot_id: int = OWN_BOT_ID) -> str:
    signature = OWN_KEY.sign(f"{bot_id}:WebAppData\n{check_string(pairs)}".encode())
    return urlencode({**pairs, "signature": base64.urlsafe_b64encode(signature).rstrip(b"=").decode()})


def own_pairs(**extra: str) -> dict[str, str]:
    user = {"id": 42, "first_name": "Ada"}
    return {"auth_date": str(SAMPLE["auth_date"]), "user": json.dumps(user), **extra}


# --- the real sample ------------------------------------------------------------------------

SAMPLE_USER = WebAppUser(id=279058397, first_name="Vladislav + - ? /", last_name="Kibenko",
                         username="vdkfrost", language_code="ru", is_premium=True)


def test_the_real_sample_passes_the_hmac_check() -> None:
    data = by_hmac(RAW)
    assert data.user == SAMPLE_USER
    assert data.auth_date == datetime(2024, 12, 7, 15, 19, 47, tzinfo=UTC)
    assert (data.query_id, data.start_param) == (None, None)
    assert (data.chat_type, data.chat_instance) == ("private", "8134722200314281151")
    # The HMAC covers `signature`, so it is part of what was verified; `hash` is not.
    assert set(data.raw) == {"user", "chat_instance", "chat_type", "auth_date", "signature"}
    assert json.loads(data.raw["user"])["allows_write_to_pm"] is True


def test_the_real_sample_passes_the_ed25519_check() -> None:
    data = by_signature(RAW)
    assert data.user == SAMPLE_USER
    assert data.auth_date == SIGNED_AT
    assert set(data.raw) == {"user", "chat_instance", "chat_type", "auth_date"}
    assert data.raw == {k: v for k, v in by_hmac(RAW).raw.items() if k != "signature"}


def test_the_ed25519_check_needs_no_hash() -> None:
    without_hash = RAW.split("&hash=")[0]
    assert by_signature(without_hash) == by_signature(RAW)


# --- the fixture's "expected" entries ---------------------------------------------------------

def test_expected_hmac_hash_valid() -> None:
    assert SAMPLE["expected"]["hmac_hash_valid"] is True
    assert webapp_secret(TOKEN).hex() == SAMPLE["secret_key_hex_hmac_sha256_WebAppData_token"]
    by_hmac(RAW)


def test_expected_hmac_refused_with_token_plus_a() -> None:
    assert SAMPLE["expected"]["hmac_hash_valid_with_token_plus_A"] is False
    with pytest.raises(InvalidInitData, match="hash does not match") as error:
        by_hmac(RAW, token=TOKEN + "A")
    assert error.value.reason is Reason.BAD_HASH


def test_expected_ed25519_valid_with_production_key() -> None:
    assert SAMPLE["expected"]["ed25519_signature_valid_with_production_key"] is True
    assert SAMPLE["telegram_ed25519_public_keys_hex"] == {
        "production": TELEGRAM_PUBLIC_KEY, "test": TELEGRAM_TEST_PUBLIC_KEY}
    by_signature(RAW, key=SAMPLE["telegram_ed25519_public_keys_hex"]["production"])


def test_expected_ed25519_refused_with_bot_id_plus_1() -> None:
    assert SAMPLE["expected"]["ed25519_signature_valid_with_bot_id_plus_1"] is False
    with pytest.raises(InvalidInitData, match="signature does not verify") as error:
        by_signature(RAW, bot_id=BOT_ID + 1)
    assert error.value.reason is Reason.BAD_SIGNATURE


@pytest.mark.parametrize("check", [by_hmac, by_signature])
def test_expected_expired_after_11s_with_1s_of_life(check: Any) -> None:
    assert SAMPLE["expected"]["expired_if_expires_in_1s_checked_after_auth_date_plus_11s"] is True
    with pytest.raises(InvalidInitData, match="more than 0:00:01 before") as error:
        check(RAW, now=SIGNED_AT + timedelta(seconds=11), max_age=timedelta(seconds=1))
    assert error.value.reason is Reason.STALE


# --- changes, keys and tokens -----------------------------------------------------------------

CHANGED = {
    "user": RAW.replace("279058397", "279058398"),
    "auth_date": RAW.replace("auth_date=1733584787", "auth_date=1733584788"),
    "query_id added": RAW.replace("&hash=", "&query_id=AAHdF6IQAAAAAN0XohDhrOrc&hash="),
    "chat_type": RAW.replace("chat_type=private", "chat_type=group"),
}


@pytest.mark.parametrize("raw", CHANGED.values(), ids=CHANGED.keys())
def test_a_changed_field_fails_the_hmac_check(raw: str) -> None:
    assert raw != RAW
    with pytest.raises(InvalidInitData, match="hash does not match") as error:
        by_hmac(raw)
    assert error.value.reason is Reason.BAD_HASH


@pytest.mark.parametrize("raw", CHANGED.values(), ids=CHANGED.keys())
def test_a_changed_field_fails_the_ed25519_check(raw: str) -> None:
    with pytest.raises(InvalidInitData, match="signature does not verify") as error:
        by_signature(raw)
    assert error.value.reason is Reason.BAD_SIGNATURE


def test_a_changed_query_id_fails_both_checks() -> None:
    pairs = own_pairs(query_id="AAHdF6IQAAAAAN0XohDhrOrc")
    by_hmac(hmac_signed(pairs), token=OWN_TOKEN)
    by_signature(ed25519_signed(pairs), bot_id=OWN_BOT_ID, key=OWN_PUBLIC_HEX)
    with pytest.raises(InvalidInitData, match="hash does not match"):
        by_hmac(hmac_signed(pairs).replace("AAHdF6", "AAHdF7"), token=OWN_TOKEN)
    with pytest.raises(InvalidInitData, match="signature does not verify"):
        by_signature(ed25519_signed(pairs).replace("AAHdF6", "AAHdF7"), bot_id=OWN_BOT_ID,
                     key=OWN_PUBLIC_HEX)


def test_a_missing_hash_is_refused() -> None:
    with pytest.raises(InvalidInitData, match="no hash field") as error:
        by_hmac(RAW.split("&hash=")[0])
    assert error.value.reason is Reason.MISSING_HASH


def test_a_missing_signature_is_refused_by_the_ed25519_check() -> None:
    without = RAW.replace("&signature=" + by_hmac(RAW).raw["signature"], "")
    with pytest.raises(InvalidInitData, match="no signature field") as error:
        by_signature(without)
    assert error.value.reason is Reason.MISSING_SIGNATURE
    # and the HMAC check sees the pair gone from its string
    with pytest.raises(InvalidInitData, match="hash does not match"):
        by_hmac(without)


def test_another_token_is_refused() -> None:
    with pytest.raises(InvalidInitData, match="hash does not match"):
        by_hmac(RAW, token=OWN_TOKEN)


def test_the_test_environment_key_is_refused_for_a_production_sample() -> None:
    with pytest.raises(InvalidInitData, match="signature does not verify") as error:
        by_signature(RAW, key=TELEGRAM_TEST_PUBLIC_KEY)
    assert error.value.reason is Reason.BAD_SIGNATURE


def test_an_upper_case_hash_is_refused() -> None:
    digest = RAW.split("&hash=")[1]
    with pytest.raises(InvalidInitData, match="64 lower-case hex digits") as error:
        by_hmac(RAW.replace(digest, digest.upper()))
    assert error.value.reason is Reason.BAD_HASH


@pytest.mark.parametrize("extra", ["&chat_type=private", "&chat_type=group", "&hash=00",
                                   "&signature=x"])
@pytest.mark.parametrize("check", [by_hmac, by_signature])
def test_a_repeated_key_is_refused(check: Any, extra: str) -> None:
    key = extra[1:].split("=")[0]
    with pytest.raises(InvalidInitData, match=f"repeats the key '{key}'") as error:
        check(RAW + extra)
    assert error.value.reason is Reason.DUPLICATE_KEY


def test_a_non_canonical_signature_spelling_is_refused() -> None:
    signature = by_hmac(RAW).raw["signature"]
    # 86 base64 characters carry 516 bits for 64 bytes: the last one's low 2 bits are unused,
    # so "Q" (010000) and "R" (010001) decode to the same bytes. Only the canonical one passes.
    assert signature.endswith("Q")
    for spelling in [signature[:-1] + "R", signature + "==", signature.replace("-", "+")]:
        with pytest.raises(InvalidInitData, match="64 bytes of unpadded base64url") as error:
            by_signature(RAW.replace(signature, spelling.replace("+", "%2B").replace("=", "%3D")))
        assert error.value.reason is Reason.BAD_SIGNATURE


# --- the time window --------------------------------------------------------------------------

@pytest.mark.parametrize("check", [by_hmac, by_signature])
def test_auth_date_window(check: Any) -> None:
    check(RAW, now=SIGNED_AT + MAX_AGE)  # exactly max_age old: still fresh
    check(RAW, now=SIGNED_AT - timedelta(seconds=30))  # within the default 30 s of skew
    with pytest.raises(InvalidInitData, match="open the Mini App again") as stale:
        check(RAW, now=SIGNED_AT + MAX_AGE + timedelta(seconds=1))
    assert stale.value.reason is Reason.STALE
    with pytest.raises(InvalidInitData, match="is more than 0:00:30 after") as future:
        check(RAW, now=SIGNED_AT - timedelta(seconds=31))
    assert future.value.reason is Reason.FUTURE


def test_the_window_is_judged_after_the_hash() -> None:
    # A forged payload learns nothing about the window: the hash is refused first.
    with pytest.raises(InvalidInitData, match="hash does not match"):
        by_hmac(CHANGED["user"], now=SIGNED_AT + timedelta(days=365))


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware") as error:
        by_hmac(RAW, now=NOW.replace(tzinfo=None))
    assert not isinstance(error.value, InvalidInitData)


def test_a_bad_public_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="32 bytes of hex") as error:
        by_signature(RAW, key="e7bf03")
    assert not isinstance(error.value, InvalidInitData)


# --- garbage and odd payloads -----------------------------------------------------------------

GARBAGE = {
    "empty": ("", Reason.MISSING_HASH, "no hash field"),
    "no equals sign": ("garbage", Reason.MALFORMED, "not a query string"),
    "empty field": (RAW.replace("&chat_type", "&&chat_type"), Reason.MALFORMED, "not a query string"),
    "bad escape": (RAW.replace("%7B", "%7G"), Reason.MALFORMED, "two-digit hex escape"),
    "invalid utf-8": ("a=%FF&" + RAW, Reason.MALFORMED, "not a query string"),
    "encoded surrogate": ("a=%ED%A0%80&" + RAW, Reason.MALFORMED, "not a query string"),
    "raw non-ascii": ("a=é&" + RAW, Reason.MALFORMED, "not percent-encoded"),
    "empty key": ("=x&" + RAW, Reason.MALFORMED, "key is empty"),
    "odd key": ("a%3Db=x&" + RAW, Reason.MALFORMED, "key is empty or not made of"),
    "too long": ("a=" + "x" * 70_000, Reason.MALFORMED, "longer than 65536"),
    "too many fields": ("&".join(f"k{i}=v" for i in range(101)), Reason.MALFORMED,
                        "not a query string"),
    "json": ('{"hash": "00"}', Reason.MALFORMED, "not a query string"),
}


@pytest.mark.parametrize(("raw", "reason", "match"), GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("check", [by_hmac, by_signature])
def test_garbage_is_refused(check: Any, raw: str, reason: Reason, match: str) -> None:
    if check is by_signature and reason is Reason.MISSING_HASH:
        reason, match = Reason.MISSING_SIGNATURE, "no signature field"
    with pytest.raises(InvalidInitData, match=match) as error:
        check(raw)
    assert error.value.reason is reason
    assert str(error.value).startswith("The initData ")


def test_query_id_and_start_param_are_read() -> None:
    pairs = own_pairs(query_id="AAHdF6IQ", start_param="ref_42", chat_type="sender")
    data = by_hmac(hmac_signed(pairs), token=OWN_TOKEN)
    assert (data.query_id, data.start_param, data.chat_type, data.chat_instance) == (
        "AAHdF6IQ", "ref_42", "sender", None)
    assert data.user == WebAppUser(id=42, first_name="Ada", last_name=None, username=None,
                                   language_code=None, is_premium=False)
    signed = by_signature(ed25519_signed(pairs), bot_id=OWN_BOT_ID, key=OWN_PUBLIC_HEX)
    assert signed == dataclasses.replace(data, raw=pairs)


def test_initdata_without_a_user_has_none() -> None:
    pairs = {"auth_date": str(SAMPLE["auth_date"]), "receiver": '{"id":1}'}
    assert by_hmac(hmac_signed(pairs), token=OWN_TOKEN).user is None


SIGNED_BUT_ODD = {
    "user not json": ({"user": "{id:1}"}, "user is not a JSON object"),
    "user a list": ({"user": "[1]"}, "user is not a JSON object"),
    "user key repeated": ({"user": '{"id":1,"id":2,"first_name":"A"}'}, "user is not a JSON object"),
    "user id a bool": ({"user": '{"id":true,"first_name":"A"}'}, "user.id is not an integer"),
    "user id a float": ({"user": '{"id":1.0,"first_name":"A"}'}, "user.id is not an integer"),
    "no first name": ({"user": '{"id":1}'}, "user.first_name is not a string"),
    "premium a string": ({"user": '{"id":1,"first_name":"A","is_premium":"yes"}'},
                         "user.is_premium is not true or false"),
    "username a number": ({"user": '{"id":1,"first_name":"A","username":5}'},
                          "user.username is not a string"),
    "no auth_date": ({"auth_date": None}, "has no auth_date"),
    "auth_date signed": ({"auth_date": "-1"}, "not a Unix time"),
    "auth_date huge": ({"auth_date": "9" * 20}, "not a Unix time"),
    "line break": ({"start_param": "x\nauth_date=1"}, "holds a line break"),
}


@pytest.mark.parametrize(("change", "match"), SIGNED_BUT_ODD.values(), ids=SIGNED_BUT_ODD.keys())
def test_a_properly_signed_but_malformed_payload_is_refused(change: dict[str, str | None],
                                                            match: str) -> None:
    pairs = {k: v for k, v in {**own_pairs(), **change}.items() if v is not None}
    with pytest.raises(InvalidInitData, match=match) as by_token:
        by_hmac(hmac_signed(pairs), token=OWN_TOKEN)
    with pytest.raises(InvalidInitData, match=match) as by_key:
        by_signature(ed25519_signed(pairs), bot_id=OWN_BOT_ID, key=OWN_PUBLIC_HEX)
    assert by_token.value.reason is by_key.value.reason is Reason.MALFORMED


# --- single-character changes -----------------------------------------------------------------

BASELINE = {"hmac": by_hmac(RAW), "ed25519": by_signature(RAW)}
CHECKS: dict[str, Callable[[str], InitData]] = {"hmac": by_hmac, "ed25519": by_signature}


def outcome(check: str, raw: str) -> InitData | None:
    try:
        return CHECKS[check](raw)
    except InvalidInitData:
        return None


def test_the_case_of_a_percent_escape_does_not_matter() -> None:
    # The one kind of single-character change that passes: it decodes to the same data.
    changed = RAW.replace("%7B", "%7b", 1)
    assert outcome("hmac", changed) == BASELINE["hmac"]
    assert outcome("ed25519", changed) == BASELINE["ed25519"]


@pytest.mark.parametrize("check", CHECKS)
def test_every_position_changed_is_refused_or_the_same(check: str) -> None:
    for index, char in enumerate(RAW):
        for other in {chr(ord(char) ^ 1), "%", "&", "=", "+"} - {char}:
            result = outcome(check, RAW[:index] + other + RAW[index + 1:])
            assert result is None or result == BASELINE[check], (index, other)


@settings(max_examples=400, deadline=None)
@given(index=st.integers(0, len(RAW) - 1),
       other=st.one_of(st.sampled_from(string.printable), st.characters()),
       check=st.sampled_from(sorted(CHECKS)))
def test_any_single_character_change_is_refused_or_the_same(index: int, other: str, check: str) -> None:
    changed = RAW[:index] + other + RAW[index + 1:]
    result = outcome(check, changed)
    assert result is None or result == BASELINE[check]
