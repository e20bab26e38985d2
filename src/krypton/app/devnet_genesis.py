"""Which devnet chain the database's chain cursors were written against.

The devnet lives in memory: every server boot starts a new chain (a genesis of its own),
while the database keeps the cursors the watchers wrote against the previous one. Those
point past everything the new chain produces, so payments would go unseen. The genesis is
stored beside the cursors; when the devnet's differs, the cursors are reset with it, in one
unit of work. A database holding a devnet genesis is refused on a real network: its
payments and cursors came from a simulated chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from krypton.app.deps import Deps
from krypton.domain.errors import DomainError

# A reserved name in the chain cursors table (chain cursors are named "ton:…", "tron:…").
GENESIS_CURSOR = "devnet:genesis"


class DevnetDatabase(DomainError):
    code = "devnet_database"


@dataclass(frozen=True, slots=True)
class Adopted:
    """What recording a devnet's genesis changed."""

    previous: str | None  # the genesis stored before (None: none was)
    reset: int  # how many chain cursors were removed


async def adopt(deps: Deps, genesis: str) -> Adopted | None:
    """Record `genesis` as the chain the cursors follow, resetting every chain cursor when
    another chain (or none, in a database from before genesis ids) was recorded. None: it
    was recorded already, nothing changed."""
    async with deps.uow() as uow:
        stored = await uow.cursors.get(GENESIS_CURSOR)
        if stored == genesis:
            return None
        removed = await uow.cursors.remove_all(keep=GENESIS_CURSOR)
        await uow.cursors.set(GENESIS_CURSOR, genesis)
        await uow.commit()
    return Adopted(stored, removed)


async def refuse_devnet_database(deps: Deps, network: str) -> None:
    """On a real network, refuse a database the devnet has been run on."""
    async with deps.uow(write=False) as uow:
        stored = await uow.cursors.get(GENESIS_CURSOR)
    if stored is not None:
        raise DevnetDatabase(
            f"This database was used with the devnet (its payments and chain positions come from "
            f"the simulated chains), so it cannot be used on {network}: point KRYPTON_DATABASE_URL "
            f"(or KRYPTON_DATA_DIR) at a new database for {network}.")
