"""What both simulators share: the injected clock, deterministic ids and the devnet's errors.

Nothing here reads the wall clock or a random source: the clock is a function handed in,
and every hash or id is a sha256 over a seed, a label and a counter, so two devnets built
with the same seed, clock and calls produce byte-identical chains. The server gives each
boot's devnet a nonce of its own (bootstrap.py), part of the seed, so no id repeats across
restarts on one database; `genesis_id` names the chain a seed produces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

from krypton.domain.errors import DomainError

Clock = Callable[[], datetime]
DEFAULT_SEED = "krypton-devnet"
DEFAULT_PAYERS = ("alice", "bob", "carol")


class DevnetError(DomainError):
    """A request the devnet refuses; `status` is the HTTP status the control API answers with."""

    status = 422


class InvalidInput(DevnetError):
    code = "invalid_input"


class MalformedBody(DevnetError):
    status = 400
    code = "invalid_json"


class UnknownPayer(DevnetError):
    code = "unknown_payer"


class InsufficientFunds(DevnetError):
    status = 409
    code = "insufficient_funds"


class ReorgRefused(DevnetError):
    status = 409
    code = "reorg_refused"


class Ids:
    """Unique, reproducible digests: sha256(seed / label / counter)."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._count = 0

    def next(self, label: str) -> bytes:
        self._count += 1
        return hashlib.sha256(f"{self._seed}/{label}/{self._count}".encode()).digest()


def genesis_id(seed: str) -> str:
    """The identity of the chain a seed produces: whoever stored cursors or transaction ids
    of a devnet can tell by it whether the devnet running now is that chain."""
    return hashlib.sha256(f"{seed}/genesis".encode()).hexdigest()[:32]


def named(*parts: str) -> bytes:
    """A digest that depends on the name only (not the seed): payer and contract addresses stay
    the same across devnet restarts, so a CLI user can keep paying from "alice"."""
    return hashlib.sha256("/".join(("krypton-devnet", *parts)).encode()).digest()


def epoch_ms(clock: Clock) -> int:
    return int(clock().timestamp() * 1000)


def epoch_s(clock: Clock) -> int:
    return int(clock().timestamp())


def check_payer(name: str, payers: Mapping[str, object]) -> None:
    if name not in payers:
        known = ", ".join(sorted(payers))
        raise UnknownPayer(f"There is no devnet payer called {name!r}; use one of: {known}.", field="from")


AddressT = TypeVar("AddressT")
BlockT = TypeVar("BlockT")


class SimulatedChain(Generic[AddressT, BlockT]):
    """What both simulated chains share: funded payers by name and a list of blocks."""

    _payers: dict[str, AddressT]
    _blocks: list[BlockT]

    @property
    def payers(self) -> Mapping[str, AddressT]:
        return dict(self._payers)

    def payer(self, name: str) -> AddressT:
        check_payer(name, self._payers)
        return self._payers[name]

    @property
    def head(self) -> BlockT:
        return self._blocks[-1]


def check_amount(amount: int, *, field: str = "amount", maximum: int | None = None) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput(f"{field} must be a positive whole number of the smallest unit, not {amount!r}.",
                           field=field)
    if maximum is not None and amount > maximum:
        raise InvalidInput(f"{field} must be at most {maximum}.", field=field)
