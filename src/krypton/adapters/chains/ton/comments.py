"""Text comments: a message body of 32-bit op 0 followed by UTF-8 text in "snake" cells.

The text continues in ref[0] of each cell. Wallets split it at arbitrary byte positions,
even inside a multi-byte UTF-8 character, so the bytes of every cell are joined first and
decoded once. What `text_comment` returns:

- the text, verbatim (no trimming; an op-0 body with no text gives "");
- None for no body, an empty body, another op (0x2167da4b encrypted comment, a jetton
  notification, ...), a cell whose bits are not whole bytes, and bytes that are not valid
  UTF-8. Invalid UTF-8 gives None rather than replacement characters: such a comment can
  never equal an invoice memo, and a lossy string would only look like one.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell

from krypton.adapters.chains.ton.cells import CellFormatError, Reader, cell_from_boc

OP_TEXT = 0x00000000
OP_ENCRYPTED = 0x2167DA4B

# Bytes of text that fit after the op in the first cell, and in each continuation cell.
FIRST_CELL_BYTES = (1023 - 32) // 8
NEXT_CELL_BYTES = 1023 // 8


def text_comment(body: Cell | None) -> str | None:
    """The comment carried by a message body, or None if it carries none (see module doc)."""
    if body is None:
        return None
    try:
        reader = Reader(body)
        if reader.remaining_bits < 32 or reader.uint(32) != OP_TEXT:
            return None
        data = _snake_bytes(reader)
    except CellFormatError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def comment_from_boc(b64: str) -> str | None:
    """The comment in a base64 BOC body (TON Center's ``message_content.body``).

    Raises CellFormatError if the BOC itself cannot be decoded.
    """
    return text_comment(cell_from_boc(b64))


def build_comment(text: str, *, split_at: Iterable[int] = ()) -> Cell:
    """Op 0 + the UTF-8 text as a snake, filling each cell like wallets do.

    `split_at` adds cell boundaries at these byte offsets of the encoded text (for tests
    and the devnet, to imitate wallets that split early or inside a character). Raises
    ValueError for an offset outside the text or text that cannot be encoded.
    """
    data = text.encode("utf-8")
    chunks = _chunks(data, sorted(set(split_at)))
    tail: Cell | None = None
    for chunk in reversed(chunks[1:]):
        builder = Builder().store_bytes(chunk)
        if tail is not None:
            builder.store_ref(tail)
        tail = builder.end_cell()
    root = Builder().store_uint(OP_TEXT, 32).store_bytes(chunks[0])
    if tail is not None:
        root.store_ref(tail)
    cell: Cell = root.end_cell()
    return cell


def _snake_bytes(reader: Reader) -> bytes:
    parts: list[bytes] = []
    while True:
        if reader.remaining_bits % 8:
            raise CellFormatError("a text cell holds a number of bits that is not whole bytes")
        parts.append(reader.raw_bytes(reader.remaining_bits // 8))
        if reader.remaining_refs == 0:
            return b"".join(parts)
        reader = Reader(reader.ref())


def _chunks(data: bytes, splits: list[int]) -> list[bytes]:
    for offset in splits:
        if not 0 < offset < len(data):
            raise ValueError(f"split offset {offset} is outside the text's {len(data)} bytes")
    chunks: list[bytes] = []
    start, capacity = 0, FIRST_CELL_BYTES
    boundaries = [*splits, len(data)]
    while True:
        end = min(boundaries[0], start + capacity)
        chunks.append(data[start:end])
        start, capacity = end, NEXT_CELL_BYTES
        if boundaries[0] == end:
            boundaries.pop(0)
        if start >= len(data):
            return chunks
