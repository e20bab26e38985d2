"""Invoice memos: generated from randomness, recognised however a payer types them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from krypton.domain import memo


@given(st.binary(min_size=8, max_size=8))
def test_a_memo_is_recognised_as_typed_in_any_case_with_blanks(random_bytes: bytes) -> None:
    m = memo.from_random(random_bytes)
    body = m.removeprefix(memo.PREFIX)
    assert len(body) == memo.LENGTH and set(body) <= set(memo.ALPHABET)
    for typed in (m, m.lower(), f"  {m} ", body, body.lower(), f"kr{body.lower()}"):
        assert memo.normalise(typed) == m


def test_a_memo_whose_body_starts_with_kr_survives_normalising() -> None:
    assert memo.normalise("KR-KR4ACDEF") == "KR-KR4ACDEF"
    assert memo.normalise("kr-kr4acdef") == "KR-KR4ACDEF"


def test_look_alikes_and_other_comments_name_no_memo() -> None:
    for comment in (None, "", "thanks", "KR-0O1IL5S2", "KR-ACDEFGH", "KR-ACDEFGHJK"):
        assert memo.normalise(comment) is None
