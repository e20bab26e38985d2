"""Invoice memos: the short text a TON payer puts in the comment so we know the invoice.

Eight characters from an alphabet without look-alikes (no 0/O, 1/I/L, 5/S, 2/Z, 8/B),
case-insensitive, after a "KR-" prefix: 25^8 ≈ 1.5e11 memos.

Wallets and people mangle comments, so a memo is found anywhere in the comment ("Order
KR-ABCD2345 thanks"), after folding what a phone keyboard or a copy from a web page turns
it into: any case; full-width forms (NFKC); Cyrillic and Greek letters that look like the
Latin ones (К, Р, А, ...; З for 3); zero-width and other invisible format characters;
Unicode hyphens and dashes for "-"; blanks anywhere inside the memo ("KR - ABCD 2345").
With the prefix the memo may sit anywhere, followed by anything but another letter or
digit; without it ("ABCD2345", "krABCD2345") only as the whole comment, since eight
letters from the alphabet may well be an ordinary word. A comment naming two different
memos names none that can be trusted: `find` returns both, `normalise` None.
"""

from __future__ import annotations

import re
import unicodedata

ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
LENGTH = 8
PREFIX = "KR-"

# Look-alikes of the Latin capitals and digits, after upper-casing (Cyrillic, Greek).
_LOOK_ALIKES = str.maketrans({
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M",
    "О": "O", "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W",
    "З": "3",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
_HYPHENS = "\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d\u058a\u05be"
_BLANK = r"[^\S\n]*"  # blanks (not line breaks) a payer may leave inside the memo
_BODY_CHAR = f"[{ALPHABET}]"
_BODY = _BODY_CHAR + f"(?:{_BLANK}{_BODY_CHAR}){{{LENGTH - 1}}}"
# With the prefix, anywhere; the memo must not run on into another letter or digit.
_PREFIXED = re.compile(f"K{_BLANK}R{_BLANK}-?{_BLANK}({_BODY})(?![^\\W_])")
# Without it, only as the whole comment.
_BARE = re.compile(f"\\s*(?:K{_BLANK}R{_BLANK}-?{_BLANK})?({_BODY})\\s*")


def from_random(random_bytes: bytes) -> str:
    """Build a memo from at least LENGTH random bytes (the caller owns randomness)."""
    if len(random_bytes) < LENGTH:
        raise ValueError("need at least 8 random bytes")
    # 256 % 25 != 0 leaves a tiny bias; memos need uniqueness, not perfect uniformity.
    return PREFIX + "".join(ALPHABET[b % len(ALPHABET)] for b in random_bytes[:LENGTH])


def find(comment: str | None) -> tuple[str, ...]:
    """Every distinct memo a comment names, in order of appearance (see the module doc)."""
    if not comment:
        return ()
    text = fold(comment)
    bodies = _PREFIXED.findall(text)
    if not bodies:
        bare = _BARE.fullmatch(text)
        bodies = [bare.group(1)] if bare else []
    # str.split() drops the blanks left inside; dict keeps the first of repeated memos.
    memos = [PREFIX + "".join(body.split()) for body in bodies]
    return (memos[0],) if len(memos) == 1 else tuple(dict.fromkeys(memos))


def normalise(comment: str | None) -> str | None:
    """The one memo a comment names, or None if it names none or more than one."""
    found = find(comment)
    return found[0] if len(found) == 1 else None


def fold(comment: str) -> str:
    """The comment upper-cased, with look-alikes, hyphens and invisible characters folded."""
    if comment.isascii():  # the usual case, and the cheap one
        return comment.upper()
    text = unicodedata.normalize("NFKC", comment)
    text = "".join("-" if c in _HYPHENS else c for c in text
                   if unicodedata.category(c) != "Cf")  # zero-width and other format characters
    return text.upper().translate(_LOOK_ALIKES)
