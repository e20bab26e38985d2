"""Summarise a py-spy profile recorded by `python -m bench --profile` (collapsed stacks).

    .venv/bin/python -m bench.profile bench/results/profile-sqlite.txt [TOP]

Each line is `thread (TID): NAME;frame;frame;... COUNT`, a frame `function (path:line)`.
Idle threads are left out, and a thread inside SQLite (which releases the GIL) still
counts: on SQLite the statements run on the event loop's thread, so that is its time too.
Caveat: on PostgreSQL SQLAlchemy's async layer runs its sync code in greenlets, whose stacks
py-spy shows detached from the request that caused them, so "Inclusive time of Krypton
functions" undercounts database work there; the "by layer" view, which looks at the
innermost frames, does not.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# (layer, regex on a frame); a sample goes to the first layer matching any frame of its stack...
FEATURES = [
    ("background workers (projections, expiry)", r"^_forever \("),
    ("Tron deposit-address derivation", r"^\S*tron_address \("),
]
# ...else to the layer of its innermost frame that matches one of these (stdlib frames such as
# json/ or contextlib/ are skipped over unless listed, so they count for their caller).
LAYERS = [
    ("SQLAlchemy: cache keys", r"sqlalchemy/sql/cache_key\.py|_gen_cache_key|_static_cache_key"),
    ("SQLAlchemy: statement building/coercion per call",
     r"sqlalchemy/sql/(dml|coercions|base|elements|selectable|operators|default_comparator|type_api)\.py"),
    ("SQLAlchemy: execution, params, results, pool, greenlet", r"sqlalchemy/|greenlet"),
    ("pydantic", r"pydantic"),
    ("JSON", r"\(json/"),
    ("rate limiter", r"limits/|krypton/web/ratelimit"),
    ("auth", r"krypton/web/auth"),
    ("Krypton code", r"krypton/"),
    ("uvicorn / Starlette / FastAPI / asyncio", r"(uvicorn|starlette|fastapi|asyncio|uvloop|httptools)/"),
]


def _func(frame: str) -> str:
    """'Repo.add (krypton/adapters/db/repositories.py:122)' -> 'Repo.add (krypton/.../repositories.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})" if where else name


def _layer(frames: list[str]) -> str:
    for label, pattern in FEATURES:
        if any(re.search(pattern, f) for f in frames):
            return label
    for frame in reversed(frames):
        for label, pattern in LAYERS:
            if re.search(pattern, frame):
                return label
    return "no Python frame (C code of uvloop etc., GC)" if not frames else "other"


def summary(path: Path, top: int = 15) -> str:
    threads: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = main = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        total += count
        threads[thread.partition(": ")[2] or thread] += count
        if "MainThread" not in thread:
            continue
        main += count
        layers[_layer(frames)] += count
        if frames:
            own[_func(frames[-1])] += count
        for func in {_func(f) for f in frames if "krypton/" in f}:
            inclusive[func] += count
    if not main:
        return f"{path}: no main-thread samples"

    def share(c: Counter[str], n: int, of: int) -> str:
        return "\n".join(f"    {v / of:6.1%}  {k}" for k, v in c.most_common(n))

    return "\n".join([
        f"\nProfile {path}: {total} samples at 100 Hz of busy threads (= {total / 100:.1f} s)",
        "  By thread:", share(threads, 4, total),
        "  Event-loop thread, by layer (innermost frame):", share(layers, len(LAYERS) + 3, main),
        "  Event-loop thread, inclusive time of Krypton functions:", share(inclusive, top, main),
        "  Event-loop thread, self time by function:", share(own, top, main),
    ])


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 25))
