"""Loading the recorded Tron responses in tests/fixtures/tron (copies of ../shared/fixtures).

Some official samples are JSONC: comments stand in for omitted parts. `strip_comments`
removes `// …` and `/* … */` outside strings only (URLs and "..." inside strings stay).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "tron"


def strip_comments(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':  # copy a whole string literal, honouring backslash escapes
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ValueError("unterminated string in JSONC")
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment in JSONC")
            out.append(" ")
            i = end + 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def load(name: str) -> Any:
    """The decoded JSON of one fixture; `.jsonc` files lose their comments first."""
    path = FIXTURES / name
    assert (FIXTURES / f"{path.name.rsplit('.', 1)[0]}.source.txt").exists(), f"{name} has no .source.txt"
    text = path.read_text(encoding="utf-8")
    return json.loads(strip_comments(text) if path.suffix == ".jsonc" else text)


def vectors() -> Any:
    return load("vectors.json")
