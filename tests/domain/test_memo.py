"""Invoice memos: generated from randomness, recognised however a payer types them."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from krypton.domain import memo

memos = st.binary(min_size=8, max_size=8).map(memo.from_random)
# Text around a memo: anything that does not run on into it (a letter or digit right after
# the memo would make it a longer word).
filler = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
HYPHENS = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d"]
CYRILLIC = {"A": "А", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "P": "Р", "T": "Т", "X": "Х",
            "Y": "У", "3": "З"}


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@given(st.binary(min_size=8, max_size=8))
def test_a_memo_is_recognised_as_typed_in_any_case_with_blanks(random_bytes: bytes) -> None:
    m = memo.from_random(random_bytes)
    body = m.removeprefix(memo.PREFIX)
    assert len(body) == memo.LENGTH and set(body) <= set(memo.ALPHABET)
    for typed in (m, m.lower(), f"  {m} ", body, body.lower(), f"kr{body.lower()}"):
        assert memo.normalise(typed) == m


@given(memos, filler, filler)
def test_a_memo_is_found_anywhere_in_the_comment(m: str, before: str, after: str) -> None:
    after = f" {after}"  # not run on into the memo
    found = memo.find(f"{before} {m}{after}")
    assert m in found
    assert memo.normalise(f"{before} {m}{after}") in (m, None)  # None only if the filler names another


@given(memos, st.lists(st.sampled_from([*ZERO_WIDTH, " "]), min_size=8, max_size=8),
       st.sampled_from(HYPHENS), st.booleans(), st.booleans())
def test_look_alikes_invisible_characters_and_hyphens_are_folded(
        m: str, inserts: list[str], hyphen: str, cyrillic: bool, wide: bool) -> None:
    body = m.removeprefix(memo.PREFIX)
    typed = "".join(c + extra for c, extra in zip(body, inserts, strict=True)).rstrip(" ")
    if cyrillic:
        typed = "".join(CYRILLIC.get(c, c) for c in typed)
    comment = f"KR{hyphen}{typed}"
    if wide:
        comment = full_width(comment)
    comment = f"Order {comment.lower() if not cyrillic else comment} thanks"
    assert memo.find(comment) == (m,)
    assert memo.normalise(comment) == m


@given(memos, memos, filler)
def test_two_different_memos_name_none(first: str, second: str, between: str) -> None:
    comment = f"{first} {between} {second}"
    found = memo.find(comment)
    assert found[0] == first and second in found
    if first != second:
        assert memo.normalise(comment) is None
    else:
        assert memo.normalise(comment) == first  # the same memo twice is still one


@given(st.text(max_size=200))
def test_whatever_a_comment_holds_only_well_formed_memos_come_out(comment: str) -> None:
    shape = re.compile(f"KR-[{memo.ALPHABET}]{{{memo.LENGTH}}}")
    for found in memo.find(comment):
        assert shape.fullmatch(found)


def test_a_memo_whose_body_starts_with_kr_survives_normalising() -> None:
    assert memo.normalise("KR-KR4ACDEF") == "KR-KR4ACDEF"
    assert memo.normalise("kr-kr4acdef") == "KR-KR4ACDEF"


def test_examples() -> None:
    assert memo.find("Order KR-ACDE3467 thanks") == ("KR-ACDE3467",)
    assert memo.find("ＫＲ－ＡＣＤＥ３４６７") == ("KR-ACDE3467",)
    assert memo.find("kr-асdе з467") == ("KR-ACDE3467",)  # Cyrillic а, с, е, з
    assert memo.find("KR-AC\u200bDE 3467.") == ("KR-ACDE3467",)
    assert memo.find("KR-ACDE3467, KR-ACDE3467") == ("KR-ACDE3467",)
    assert memo.find("KR-ACDE3467 / KR-ACDE3469") == ("KR-ACDE3467", "KR-ACDE3469")


def test_look_alikes_and_other_comments_name_no_memo() -> None:
    for comment in (None, "", "thanks", "KR-0O1IL5S2", "KR-ACDEFGH", "KR-ACDEFGHJK", "hi ACDEFGHJ",
                    "KR-ACDEFGHJ4", "KR-ACDEF\nGHJ"):
        assert memo.normalise(comment) is None
