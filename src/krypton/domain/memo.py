"""Invoice memos: the short text a TON payer puts in the comment so we know the invoice.

Eight characters from an alphabet without look-alikes (no 0/O, 1/I/L, 5/S, 2/Z, 8/B),
case-insensitive, after a "KR-" prefix: 25^8 ≈ 1.5e11 memos. Wallets and people mangle comments, so matching
normalises case, surrounding blanks and a common prefix before comparing.
"""

from __future__ import annotations

import re

ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
LENGTH = 8
PREFIX = "KR-"
_SHAPE = re.compile(rf"[{ALPHABET}]{{{LENGTH}}}")


def from_random(random_bytes: bytes) -> str:
    """Build a memo from at least LENGTH random bytes (the caller owns randomness)."""
    if len(random_bytes) < LENGTH:
        raise ValueError("need at least 8 random bytes")
    # 256 % 25 != 0 leaves a tiny bias; memos need uniqueness, not perfect uniformity.
    return PREFIX + "".join(ALPHABET[b % len(ALPHABET)] for b in random_bytes[:LENGTH])


def normalise(comment: str | None) -> str | None:
    """The memo a comment names, or None if it names none."""
    if comment is None:
        return None
    text = comment.strip().upper()
    # Strip at most one prefix ("KR-" or a bare "KR"): the memo body may itself start with KR.
    for prefix in (PREFIX, PREFIX.rstrip("-"), ""):
        if text.startswith(prefix) and _SHAPE.fullmatch(text[len(prefix):]):
            return PREFIX + text[len(prefix):]
    return None
