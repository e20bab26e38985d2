"""Transition tables: the only way a status may change."""

from __future__ import annotations

from collections.abc import Mapping, MutableSequence
from enum import StrEnum
from typing import TypeVar

from krypton.domain.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


def check(table: Mapping[S, frozenset[S]], current: S, target: S, what: str) -> S:
    """Return `target` if the table allows current -> target, else raise IllegalTransition."""
    if target not in table.get(current, frozenset()):
        raise IllegalTransition(f"A {what} cannot go from '{current}' to '{target}'.")
    return target


def move(table: Mapping[S, frozenset[S]], current: S, target: S, what: str,
         changes: MutableSequence[tuple[S, S]]) -> S:
    """`check`, then note the change (the unit of work writes one event per change)."""
    changes.append((current, check(table, current, target, what)))
    return target
