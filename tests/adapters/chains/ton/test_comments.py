"""Text comments: recorded payloads, snake splits anywhere (even inside a character), and
everything that is not a comment."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.cells import CellFormatError, cell_from_boc, cell_to_boc
from krypton.adapters.chains.ton.comments import (
    FIRST_CELL_BYTES,
    NEXT_CELL_BYTES,
    OP_ENCRYPTED,
    build_comment,
    comment_from_boc,
    text_comment,
)
from tests.adapters.chains.ton.recorded import load

VECTORS: list[dict[str, Any]] = load("comment-payload-vectors.json")["vectors"]


def _observed_boc(vector: dict[str, Any]) -> str:
    if "observed_boc_base64_crc32c" in vector:
        return str(vector["observed_boc_base64_crc32c"])
    return base64.b64encode(bytes.fromhex(vector["observed_boc_hex"])).decode()


def _cells(root: Cell) -> list[Cell]:
    chain = [root]
    while chain[-1].refs:
        chain.append(chain[-1].refs[0])
    return chain


@pytest.mark.parametrize("vector", VECTORS, ids=[v["text"][:12] for v in VECTORS])
def test_recorded_payloads_decode(vector: dict[str, Any]) -> None:
    assert comment_from_boc(_observed_boc(vector)) == vector["text"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if "computed_boc_base64_no_crc" in v],
                         ids=lambda v: v["text"])
def test_builder_reproduces_the_recorded_bytes_and_hash(vector: dict[str, Any]) -> None:
    cell = build_comment(vector["text"])
    untyped: Any = cell  # to_boc carries no annotations
    assert base64.b64encode(untyped.to_boc()).decode() == vector["computed_boc_base64_no_crc"]
    assert cell_to_boc(cell) == vector["observed_boc_base64_crc32c"]
    assert base64.b64encode(cell.hash).decode() == vector["observed_body_hash_base64"]
    assert cell.bits.tobytes().hex() == vector["body_hex"]


def test_recorded_two_cell_comment_was_split_early() -> None:
    vector = VECTORS[2]
    root = cell_from_boc(_observed_boc(vector))
    size = len(vector["text"].encode())
    assert [len(c.bits) // 8 for c in _cells(root)] == [4 + size - 9, 9]  # op + 35 bytes, then 9


def test_split_inside_a_multibyte_character() -> None:
    text = "Оплата №42 💎 готова"
    data = text.encode()
    gem = data.index("💎".encode())
    splits = [1, 3, gem + 1, gem + 2, gem + 3]  # inside "О" (2 bytes) and inside the 4-byte gem
    cell = build_comment(text, split_at=splits)
    pieces = [c.bits.tobytes() for c in _cells(cell)]
    assert pieces[0][:4] == b"\0\0\0\0"
    assert b"".join(pieces)[4:] == data
    with pytest.raises(UnicodeDecodeError):
        pieces[1].decode()  # a cell on its own is not valid UTF-8
    assert text_comment(cell) == text
    assert comment_from_boc(cell_to_boc(cell)) == text


def test_long_text_fills_cells_like_wallets_do() -> None:
    text = "x" * (FIRST_CELL_BYTES + 2 * NEXT_CELL_BYTES + 1)
    cell = build_comment(text)
    assert [len(c.bits) for c in _cells(cell)] == [1023 - 7, 1016, 1016, 8]
    assert Builder().store_uint(0, 32).store_snake_string(text).end_cell().hash == cell.hash
    assert text_comment(cell) == text


def _body(op: int, tail: bytes = b"") -> Cell:
    cell: Cell = Builder().store_uint(op, 32).store_bytes(tail).end_cell()
    return cell


NOT_COMMENTS = {
    "no body": None,
    "empty body": Builder().end_cell(),
    "shorter than an op": Builder().store_uint(0, 16).end_cell(),
    "encrypted comment": _body(OP_ENCRYPTED, b"\x01" * 40),
    "jetton notification": _body(0x7362D09C, b"\x00" * 8),
    "invalid UTF-8": _body(0, b"\xff\xfe"),
    "truncated UTF-8 at the end": _body(0, "💎".encode()[:3]),
    "bits that are not whole bytes": Builder().store_uint(0, 32).store_uint(1, 3).end_cell(),
    "continuation with a partial byte": Builder().store_uint(0, 32).store_bytes(b"ab").store_ref(
        Builder().store_uint(1, 5).end_cell()).end_cell(),
}


@pytest.mark.parametrize("body", NOT_COMMENTS.values(), ids=NOT_COMMENTS.keys())
def test_what_is_not_a_comment(body: Cell | None) -> None:
    assert text_comment(body) is None


def test_op_zero_without_text_is_an_empty_comment() -> None:
    assert text_comment(_body(0)) == ""
    assert text_comment(build_comment("")) == ""


def test_undecodable_boc_is_an_error_not_a_missing_comment() -> None:
    with pytest.raises(CellFormatError, match="base64"):
        comment_from_boc("not base64!")
    with pytest.raises(CellFormatError, match="bag of cells"):
        comment_from_boc(base64.b64encode(b"hello").decode())


def test_url_safe_boc_is_accepted() -> None:
    boc = cell_to_boc(build_comment("?>?>?>~~~"))
    assert comment_from_boc(boc.replace("+", "-").replace("/", "_")) == "?>?>?>~~~"


@pytest.mark.parametrize("offset", [0, 3, -1])
def test_split_offsets_must_fall_inside_the_text(offset: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        build_comment("abc", split_at=[offset])


texts = st.text(max_size=500).filter(lambda t: len(t.encode()) <= 500)


@given(texts)
def test_build_parse_round_trip(text: str) -> None:
    cell = build_comment(text)
    assert text_comment(cell) == text
    assert comment_from_boc(cell_to_boc(cell)) == text


@given(st.data(), texts.filter(lambda t: len(t.encode()) > 1))
def test_any_split_positions_round_trip(data: st.DataObject, text: str) -> None:
    size = len(text.encode())
    splits = data.draw(st.lists(st.integers(min_value=1, max_value=size - 1), max_size=8))
    cell = build_comment(text, split_at=splits)
    assert len(_cells(cell)) >= len(set(splits)) + 1
    assert text_comment(cell) == text
