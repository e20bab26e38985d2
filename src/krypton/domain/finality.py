"""When a transfer is final, per chain: the rule every chain reader applies to what it saw.

TON: one masterchain block is final (no reorganisations), but the indexer's word that a
transaction is in one is not enough: the transaction must name its masterchain block
(`mc_block_seqno`) and that block must be at or below the masterchain head
(`/masterchainInfo`). Then it counts one confirmation and is final; a transaction with no
block yet, or with a block beyond the head we know (an indexer ahead of the node we asked,
or a head read a moment earlier), counts none and is not final: it is read again.

Tron: a transaction in block `tx_block` has one confirmation while that block is the head,
two once the next block is built on it, and so on. It is final ("solidified") once the
solid head (/walletsolidity/getnowblock) has reached its block: 19 of 27 super
representatives have built on it, about 57 s. The solidity node answers a receipt exactly
for such a transaction, which is how the reader learns it. Only solidified transfers with
a SUCCESS receipt are credited; before that they are `confirming` with a live count.
"""

from __future__ import annotations

from typing import NamedTuple

from krypton.domain.assets import TON, USDT_TRC20


class Finality(NamedTuple):
    confirmations: int
    final: bool


def ton(head_seqno: int, tx_seqno: int | None) -> Finality:
    """A TON transaction in masterchain block `tx_seqno` (None: in none yet) with the
    masterchain head at `head_seqno` (see above)."""
    if tx_seqno is None or tx_seqno > head_seqno:
        return Finality(0, False)
    return Finality(TON.finality_depth, True)


def confirmations(head_block: int, tx_block: int) -> int:
    """head - tx + 1, never below 0 (a head behind the transaction, e.g. a lagging node)."""
    return max(0, head_block - tx_block + 1)


def is_solidified(solid_head: int, tx_block: int) -> bool:
    """Whether the transaction's block is at or below the solidified head."""
    return tx_block <= solid_head


def tron(head_block: int, tx_block: int, *, solidified: bool) -> Finality:
    """A Tron transfer in `tx_block` with the chain at `head_block`; `solidified` when the
    solidity node returned its receipt. The head is cached briefly, so it may lag a block
    the solidity node already has: a solidified transfer counts the full depth."""
    count = confirmations(head_block, tx_block)
    if solidified:
        count = max(count, USDT_TRC20.finality_depth)
    return Finality(count, solidified)
