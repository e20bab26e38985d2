"""The envelope (adapters/secrets/envelope.py): sealing, opening, key rings and the key file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krypton.adapters.secrets import envelope
from krypton.adapters.secrets.envelope import (
    EnvelopeError,
    KeyRing,
    key_id_of,
    keyring_from,
    load_key_file,
    save_key_file,
)

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 132))
SECRET = b"whsec_" + base64.b64encode(bytes(range(7, 39)))
ROW = b"whk_01"
OTHER_ROW = b"whk_02"
FAST = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing((("k1", KEY_1),))


# ---- sealing and opening


def test_round_trip(ring: KeyRing) -> None:
    token = ring.seal(SECRET, aad=ROW)

    assert ring.open(token, aad=ROW) == SECRET
    assert ring.seal(b"", aad=ROW) != ring.seal(b"", aad=ROW)
    assert ring.open(ring.seal(b"", aad=ROW), aad=ROW) == b""


def test_token_is_versioned_ascii_with_the_key_id(ring: KeyRing) -> None:
    token = ring.seal(SECRET, aad=ROW)

    version, key_id, data = token.split(".")
    assert (version, key_id) == ("v1", "k1")
    assert token.isascii() and "=" not in token and "+" not in token and "/" not in token
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    assert len(raw) == 12 + len(SECRET) + 16  # nonce, ciphertext, tag
    assert SECRET not in raw
    assert key_id_of(token) == "k1" == KeyRing.key_id_of(token)


def test_each_seal_has_its_own_nonce(ring: KeyRing) -> None:
    tokens = {ring.seal(SECRET, aad=ROW) for _ in range(50)}

    assert len(tokens) == 50
    nonces = {base64.urlsafe_b64decode(t.split(".")[2] + "==")[:12] for t in tokens}
    assert len(nonces) == 50


def test_a_token_copied_to_another_row_does_not_open(ring: KeyRing) -> None:
    token = ring.seal(SECRET, aad=ROW)

    with pytest.raises(EnvelopeError, match="altered or copied from another row"):
        ring.open(token, aad=OTHER_ROW)


def test_a_flipped_byte_does_not_open(ring: KeyRing) -> None:
    version, key_id, data = ring.seal(SECRET, aad=ROW).split(".")
    raw = bytearray(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    for index in (0, 12, len(raw) - 1):  # in the nonce, the ciphertext and the tag
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        token = f"{version}.{key_id}.{base64.urlsafe_b64encode(flipped).decode().rstrip('=')}"
        with pytest.raises(EnvelopeError, match="does not decrypt"):
            ring.open(token, aad=ROW)


def test_a_token_relabelled_with_another_id_of_the_same_ring_does_not_open() -> None:
    ring = KeyRing((("k2", KEY_2), ("k1", KEY_1)))
    token = ring.seal(SECRET, aad=ROW)

    with pytest.raises(EnvelopeError, match="does not decrypt"):
        ring.open(token.replace("v1.k2.", "v1.k1."), aad=ROW)


@pytest.mark.parametrize("token", [
    "", "v1", "v1.k1", "v1.k1.", "v1..AAAA", "v1.k1.AAAA.AAAA", "k1.AAAA", "V1.k1.AAAA",
    "v1.bad id.AAAA", "v1.k1.AA+A", "v1.k1.AA/A", "v1.k1.AAAA==", "v1.k1.A", "v1.k1.é",
    "v1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # 27 bytes: shorter than nonce and tag
])
def test_malformed_tokens_are_refused(ring: KeyRing, token: str) -> None:
    with pytest.raises(EnvelopeError):
        ring.open(token, aad=ROW)


def test_a_truncated_token_is_refused(ring: KeyRing) -> None:
    token = ring.seal(SECRET, aad=ROW)

    for end in range(len(token)):
        with pytest.raises(EnvelopeError):
            ring.open(token[:end], aad=ROW)


def test_a_later_format_asks_for_an_upgrade(ring: KeyRing) -> None:
    with pytest.raises(EnvelopeError, match="upgrade Krypton"):
        ring.open("v2.k1.AAAA", aad=ROW)


def test_a_non_canonical_encoding_is_refused(ring: KeyRing) -> None:
    token = ring.seal(b"x", aad=ROW)  # 29 bytes: the last character carries 2 unused bits
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bits = alphabet[alphabet.index(last) ^ 0b01]  # an unused bit

    assert same_bits != last
    with pytest.raises(EnvelopeError, match="not valid base64"):
        ring.open(token[:-1] + same_bits, aad=ROW)


_ALPHABET = st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ é"))
_EDIT = st.one_of(
    st.tuples(st.just("replace"), st.integers(min_value=0), _ALPHABET),
    st.tuples(st.just("insert"), st.integers(min_value=0), _ALPHABET),
    st.tuples(st.just("delete"), st.integers(min_value=0), st.just("")),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.just("")),
)


def _apply(token: str, edit: tuple[str, int, str]) -> str:
    kind, position, character = edit
    index = position % (len(token) + 1)
    if kind == "replace":
        index = min(index, len(token) - 1)
        return token[:index] + character + token[index + 1:]
    if kind == "insert":
        return token[:index] + character + token[index:]
    if kind == "delete":
        index = min(index, len(token) - 1)
        return token[:index] + token[index + 1:]
    return token[:index]


@FAST
@given(plaintext=st.binary(max_size=64), aad=st.binary(min_size=1, max_size=16),
       edits=st.lists(_EDIT, min_size=1, max_size=4))
def test_any_tampering_is_refused(plaintext: bytes, aad: bytes, edits: list[tuple[str, int, str]]) -> None:
    ring = KeyRing((("k2", KEY_2), ("k1", KEY_1)))
    token = ring.seal(plaintext, aad=aad)
    tampered = token
    for edit in edits:
        tampered = _apply(tampered, edit)
    if tampered == token:
        return  # the edits undid each other: nothing was tampered with

    # Never the plaintext (or any other): every changed token is refused, with our error only.
    with pytest.raises(EnvelopeError):
        ring.open(tampered, aad=aad)


@FAST
@given(plaintext=st.binary(max_size=256), aad=st.binary(max_size=64))
def test_any_plaintext_round_trips(plaintext: bytes, aad: bytes) -> None:
    ring = KeyRing((("k1", KEY_1),))

    assert ring.open(ring.seal(plaintext, aad=aad), aad=aad) == plaintext


# ---- rotation


def test_old_key_opens_after_a_new_one_is_added(ring: KeyRing) -> None:
    old_token = ring.seal(SECRET, aad=ROW)

    rotated = ring.with_new_key()

    assert rotated.current_id != "k1"
    assert rotated.key_ids == (rotated.current_id, "k1")
    assert rotated.open(old_token, aad=ROW) == SECRET
    assert rotated.needs_rewrap(old_token)
    assert not ring.needs_rewrap(old_token)
    new_token = rotated.seal(SECRET, aad=ROW)
    assert key_id_of(new_token) == rotated.current_id
    assert not rotated.needs_rewrap(new_token)


def test_rewrap_seals_again_with_the_current_key(ring: KeyRing) -> None:
    old_token = ring.seal(SECRET, aad=ROW)
    rotated = ring.with_new_key("k2")

    new_token = rotated.rewrap(old_token, aad=ROW)

    assert key_id_of(new_token) == "k2"
    assert rotated.open(new_token, aad=ROW) == SECRET
    assert rotated.rewrap(new_token, aad=ROW) == new_token
    with pytest.raises(EnvelopeError, match="copied from another row"):
        rotated.rewrap(old_token, aad=OTHER_ROW)


def test_with_new_key_refuses_an_id_in_use_or_invalid(ring: KeyRing) -> None:
    with pytest.raises(EnvelopeError, match="'k1' is already in the ring"):
        ring.with_new_key("k1")
    with pytest.raises(EnvelopeError, match="is not 1–16 characters"):
        ring.with_new_key("has.dot")
    with pytest.raises(EnvelopeError, match="is not 1–16 characters"):
        KeyRing.generate("x" * 17)


def test_unknown_key_id_names_it(ring: KeyRing) -> None:
    token = KeyRing((("k9", KEY_2),)).seal(SECRET, aad=ROW)

    with pytest.raises(EnvelopeError) as caught:
        ring.open(token, aad=ROW)

    assert str(caught.value) == ("the secret was sealed with key 'k9', which is not in "
                                 "KRYPTON_SECRET_KEY or the key file: add it back.")


def test_without_unused_keeps_the_current_key_and_the_used_ones() -> None:
    ring = KeyRing((("k3", bytes(32)), ("k2", KEY_2), ("k1", KEY_1)))

    assert ring.without_unused([]).key_ids == ("k3",)
    assert ring.without_unused(["k1", "gone"]).key_ids == ("k3", "k1")
    assert ring.without_unused({"k1", "k2", "k3"}) == ring


def test_generate_makes_a_random_key_with_a_random_id() -> None:
    first, second = KeyRing.generate(), KeyRing.generate()

    assert first.current_id != second.current_id
    assert first.format() != second.format()
    assert len(first.current_id) == 9 and first.current_id.startswith("k")
    assert KeyRing.generate("main").key_ids == ("main",)


# ---- parsing and formatting


def test_parse_reads_commas_spaces_and_lines_current_first() -> None:
    text = f"k2:{b64(KEY_2)}, k1:{b64(KEY_1)}"

    ring = KeyRing.parse(text)

    assert ring.key_ids == ("k2", "k1")
    assert ring.current_id == "k2"
    assert KeyRing.parse(f"\n  k2:{b64(KEY_2)}\n\tk1:{b64(KEY_1)},\n") == ring
    assert KeyRing.parse(ring.format()) == ring
    assert ring.format() == f"k2:{b64(KEY_2)}\nk1:{b64(KEY_1)}\n"


def test_parse_takes_url_safe_or_unpadded_base64_and_comments() -> None:
    url_safe = base64.urlsafe_b64encode(KEY_2).decode().rstrip("=")

    ring = KeyRing.parse(f"# rotated in March\nk2:{url_safe}  # the new one\nk1:{b64(KEY_1)}")

    assert ring == KeyRing((("k2", KEY_2), ("k1", KEY_1)))


@pytest.mark.parametrize(("text", "message"), [
    ("", "holds no key"),
    (" ,\n# only a comment", "holds no key"),
    (b64(KEY_1), "entry 1 has no '<id>:' before its key"),
    (f"k1:{b64(KEY_1)},{b64(KEY_2)}", "entry 2 has no '<id>:'"),
    (f":{b64(KEY_1)}", "entry 1 has a key id that is not 1–16 characters"),
    (f"a.b:{b64(KEY_1)}", "entry 1 has a key id that is not"),
    (f"{'x' * 17}:{b64(KEY_1)}", "entry 1 has a key id that is not"),
    (f"k1:{b64(KEY_1[:16])}", "the key of 'k1' is 16 bytes, not 32"),
    (f"k1:{b64(KEY_1 + b'x')}", "the key of 'k1' is 33 bytes, not 32"),
    ("k1:not*base64", "the key of 'k1' is not base64"),
    ("k1:", "the key of 'k1' is 0 bytes"),
    (f"k1:{b64(KEY_1)},k1:{b64(KEY_2)}", "the key id 'k1' appears twice"),
    (f"k1:{b64(KEY_1)},k2:{b64(KEY_1)}", "'k1' and 'k2' are the same key"),
])
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message) as caught:
        KeyRing.parse(text)

    assert str(caught.value).startswith("KRYPTON_SECRET_KEY")
    for key in (KEY_1, KEY_2, KEY_1[:16], KEY_1 + b"x"):
        assert b64(key) not in str(caught.value)
        assert b64(key)[:12] not in str(caught.value)


def test_parse_error_names_its_source() -> None:
    with pytest.raises(EnvelopeError, match=r"^the key file /x/secret.key: the key of 'k1' is 3 bytes"):
        KeyRing.parse("k1:AAAA", source="the key file /x/secret.key")


def test_constructor_checks_like_parse() -> None:
    with pytest.raises(EnvelopeError, match="holds no key"):
        KeyRing(())
    with pytest.raises(EnvelopeError, match="is 31 bytes"):
        KeyRing((("k1", bytes(31)),))


def test_repr_and_str_show_ids_only() -> None:
    ring = KeyRing((("k2", KEY_2), ("k1", KEY_1)))

    assert repr(ring) == str(ring) == f"{ring}" == "KeyRing(current='k2', ids=('k2', 'k1'))"
    for shown in (repr(ring), repr([ring]), repr({"ring": ring})):
        for key in (KEY_1, KEY_2):
            assert b64(key) not in shown
            assert repr(key) not in shown
            assert key.hex() not in shown
            assert repr(key)[2:12] not in shown


# ---- the key file


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"

    created = load_key_file(path, create=True)

    assert path.is_file()
    assert mode_of(path) == 0o600
    assert load_key_file(path, create=True) == created
    assert load_key_file(path, create=False) == created
    assert created.format() in path.read_text()
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.key"]  # no temporary left


def test_key_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o000)
    try:
        load_key_file(tmp_path / "secret.key", create=True)
    finally:
        os.umask(previous)

    assert mode_of(tmp_path / "secret.key") == 0o600


def test_missing_key_file_without_create_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"

    with pytest.raises(EnvelopeError, match=r"there is no key file at .*secret\.key: set KRYPTON_SECRET_KEY"):
        load_key_file(path, create=False)

    assert not path.parent.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_key_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret.key"
    load_key_file(path, create=True)
    path.chmod(mode)

    with pytest.raises(EnvelopeError) as caught:
        load_key_file(path, create=True)

    assert str(caught.value) == (f"the key file {path} has mode {mode:04o}, so other users have "
                                 f"access to it: run `chmod 600 {path}`.")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty: restore it from a backup"),
    (b"  \n# just a comment\n", "is empty"),
    (b"k1:AAAA\n", "the key file .*: the key of 'k1' is 3 bytes"),
    (b"garbage", "the key file .*: entry 1 has no '<id>:'"),
    (b"\xff\xfe\x00k1", "is not text"),
])
def test_empty_or_garbled_key_file_is_refused_and_kept(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "secret.key"
    path.write_bytes(content)
    path.chmod(0o600)

    with pytest.raises(EnvelopeError, match=message):
        load_key_file(path, create=True)

    assert path.read_bytes() == content


def test_key_file_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvelopeError, match="is a folder"):
        load_key_file(tmp_path, create=True)


def test_save_key_file_rewrites_and_stays_private(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    first = load_key_file(path, create=True)
    rotated = first.with_new_key()

    save_key_file(path, rotated)

    assert mode_of(path) == 0o600
    assert load_key_file(path, create=False) == rotated
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_creating_never_replaces_a_file_another_process_wrote_first(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    theirs = KeyRing.generate()
    save_key_file(path, theirs)

    # As when two processes start together: the later one's write must not win.
    assert envelope._create_exclusively(path, KeyRing.generate().format()) is False

    assert load_key_file(path, create=True) == theirs
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


# ---- choosing the source


def test_keyring_from_prefers_the_configured_value_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"

    ring, source = keyring_from(f"k2:{b64(KEY_2)},k1:{b64(KEY_1)}", path)

    assert source == "KRYPTON_SECRET_KEY"
    assert ring.key_ids == ("k2", "k1")
    assert not path.exists() and not path.parent.exists()


def test_keyring_from_uses_the_key_file_when_nothing_is_configured(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"

    ring, source = keyring_from(None, path)
    again, _ = keyring_from("  ", path)  # blank, as an empty variable in a compose file

    assert source == str(path)
    assert path.is_file() and mode_of(path) == 0o600
    assert again == ring


def test_keyring_from_reports_a_bad_configured_value(tmp_path: Path) -> None:
    with pytest.raises(EnvelopeError, match=r"^KRYPTON_SECRET_KEY: entry 1 has no"):
        keyring_from("not-a-key", tmp_path / "secret.key")

    assert not (tmp_path / "secret.key").exists()


def test_derived_keys_are_stable_per_purpose_and_follow_the_current_key() -> None:
    ring = KeyRing.generate()
    assert ring.derive(b"session-jwt") == ring.derive(b"session-jwt")
    assert len(ring.derive(b"session-jwt")) == 32
    assert ring.derive(b"session-jwt") != ring.derive(b"other")
    assert ring.with_new_key().derive(b"session-jwt") != ring.derive(b"session-jwt")
