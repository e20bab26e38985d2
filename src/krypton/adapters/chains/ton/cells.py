"""Cells: decode a BOC, and read a cell with bounds checks.

pytoniq-core's Slice reads past the end silently (``load_uint(32)`` on 8 bits returns an
8-bit number) and its Boc() tries hex before base64, so bodies from the chain are read
through `Reader`, which raises CellFormatError instead.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pytoniq_core.boc.builder import Builder
from pytoniq_core.boc.cell import Cell
from pytoniq_core.boc.slice import Slice

from krypton.adapters.chains.ton.address import TonAddress


class CellFormatError(ValueError):
    """Bytes or a cell that do not have the expected layout."""


def store_address(builder: Builder, account: TonAddress) -> Builder:
    """addr_std without anycast: ``10 0 workchain:int8 account:bits256``."""
    stored: Builder = builder.store_uint(0b100, 3).store_int(account.workchain, 8).store_bytes(account.hash)
    return stored


def address_cell(account: TonAddress) -> Cell:
    """A cell holding only the address: how an address sits on a get-method's stack."""
    cell: Cell = store_address(Builder(), account).end_cell()
    return cell


def cell_from_boc(b64: str) -> Cell:
    """The single root cell of a base64 (standard or url-safe) bag of cells."""
    try:
        data = base64.b64decode(b64.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise CellFormatError("the body is not valid base64") from None
    try:
        cells = Cell.from_boc(data)
    except Exception as exc:  # pytoniq raises bare Exception, IndexError, AssertionError...
        raise CellFormatError(f"the body is not a valid bag of cells: {exc}") from None
    if len(cells) != 1:
        raise CellFormatError(f"the bag of cells has {len(cells)} roots; expected one")
    root: Cell = cells[0]
    return root


def cell_to_boc(cell: Cell) -> str:
    """Standard base64 BOC (with CRC32C, as TON Center returns bodies)."""
    untyped: Any = cell  # to_boc and begin_parse carry no annotations
    return base64.b64encode(untyped.to_boc(hash_crc32=True)).decode("ascii")


class Reader:
    """Sequential, bounds-checked reads from one cell."""

    def __init__(self, cell: Cell) -> None:
        if cell.is_exotic:
            raise CellFormatError("an exotic (special) cell cannot be read as a message body")
        untyped: Any = cell
        self._slice: Slice = untyped.begin_parse()

    @property
    def remaining_bits(self) -> int:
        return int(self._slice.remaining_bits)

    @property
    def remaining_refs(self) -> int:
        return int(self._slice.remaining_refs)

    def _need(self, bits: int, what: str) -> None:
        if self.remaining_bits < bits:
            raise CellFormatError(f"{what} needs {bits} bits; only {self.remaining_bits} remain")

    def uint(self, bits: int, what: str = "an integer") -> int:
        if bits == 0:
            return 0
        self._need(bits, what)
        return int(self._slice.load_uint(bits))

    def sint(self, bits: int, what: str = "an integer") -> int:
        self._need(bits, what)
        return int(self._slice.load_int(bits))

    def bit(self, what: str = "a flag bit") -> bool:
        self._need(1, what)
        return bool(self._slice.load_bit())

    def raw_bytes(self, length: int, what: str = "bytes") -> bytes:
        self._need(length * 8, what)
        data: bytes = self._slice.load_bytes(length)
        return data

    def coins(self, what: str = "an amount") -> int:
        """VarUInteger 16: a 4-bit byte length, then that many bytes."""
        length = self.uint(4, what)
        return self.uint(length * 8, what)

    def address(self, what: str = "an address") -> TonAddress | None:
        """MsgAddress restricted to addr_none (None) and addr_std without anycast."""
        tag = self.uint(2, what)
        if tag == 0:
            return None
        if tag != 2:
            kind = "an external" if tag == 1 else "a variable-length"
            raise CellFormatError(f"{what} is {kind} address; expected a standard one")
        if self.bit(what):
            raise CellFormatError(f"{what} uses anycast, which is not supported")
        workchain = self.sint(8, what)
        account = self.raw_bytes(32, what)
        if workchain not in (0, -1):
            raise CellFormatError(f"{what} is in workchain {workchain}; expected 0 or -1")
        return TonAddress(workchain, account)

    def ref(self, what: str = "a reference") -> Cell:
        if self.remaining_refs < 1:
            raise CellFormatError(f"{what} is missing: no reference left")
        ref: Cell = self._slice.load_ref()
        return ref

    def rest(self) -> Cell:
        """What is left (bits and references) as a cell of its own."""
        rest: Cell = Builder().store_slice(self._slice).end_cell()
        return rest
