"""Confirmations and solidification on Tron, from block heights the caller has fetched.

A transaction in block `tx_block` has one confirmation while that block is the head, two
once the next block is built on it, and so on. It is final ("solidified") once the solid
head (/walletsolidity/getnowblock) has reached its block: 19 of 27 super representatives
have built on it, about 57 s. Credit only solidified transfers with a SUCCESS receipt.
"""

from __future__ import annotations


def confirmations(head_block: int, tx_block: int) -> int:
    """head - tx + 1, never below 0 (a head behind the transaction, e.g. a lagging node)."""
    return max(0, head_block - tx_block + 1)


def is_solidified(solid_head: int, tx_block: int) -> bool:
    """Whether the transaction's block is at or below the solidified head."""
    return tx_block <= solid_head
