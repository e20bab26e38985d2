"""Deposit addresses derived ahead by the helper process are the ones derived inline."""

from __future__ import annotations

import asyncio

from krypton.adapters.chains.tron.prefetch import PrefetchedAddresses
from tests.adapters.chains.tron.test_derivation import ACCOUNT, ACCOUNT_XPUB


async def _delivered(addresses: PrefetchedAddresses, index: int) -> None:
    """Wait until the helper's batch holding `index` has arrived."""
    for _ in range(500):
        if index in addresses._ready:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the helper never delivered index {index}")


async def test_the_helper_derives_the_next_indexes_and_they_match() -> None:
    addresses = PrefetchedAddresses(ACCOUNT_XPUB, ahead=8, start_after=2)
    try:
        assert [addresses.address(i) for i in range(2)] == [ACCOUNT.address(i) for i in range(2)]
        await _delivered(addresses, 9)
        served = [addresses.address(i) for i in range(2, 10)]
        assert served == [ACCOUNT.address(i) for i in range(2, 10)]
        assert addresses.inline == 2  # the other eight came from the helper
        helper = addresses._helper
        assert helper is not None and helper.returncode is None
    finally:
        await addresses.aclose()
    assert helper.returncode == 0  # it ended with its input
    assert addresses.address(10) == ACCOUNT.address(10)  # closed: derived inline again
    assert addresses._task is None and addresses._helper is None


async def test_a_jump_in_the_counter_is_derived_inline_and_forgets_the_skipped_batch() -> None:
    # Another process took indexes 3..99 of the counter: this one never asks for them.
    addresses = PrefetchedAddresses(ACCOUNT_XPUB, ahead=8, start_after=1)
    try:
        addresses.address(2)
        await _delivered(addresses, 3)
        assert addresses.address(100) == ACCOUNT.address(100)
        assert not [i for i in addresses._ready if i < 100]
        await _delivered(addresses, 101)
        assert addresses.address(101) == ACCOUNT.address(101)
    finally:
        await addresses.aclose()


async def test_a_helper_that_dies_leaves_inline_derivation_working() -> None:
    addresses = PrefetchedAddresses(ACCOUNT_XPUB, ahead=8, start_after=1)
    try:
        addresses.address(0)
        await _delivered(addresses, 1)
        helper = addresses._helper
        assert helper is not None
        helper.kill()
        await helper.wait()
        for i in range(1, 30):  # uses up the batch, asks the dead helper, falls back
            assert addresses.address(i) == ACCOUNT.address(i)
            await asyncio.sleep(0)
        if addresses._task is not None:
            await addresses._task
        assert addresses._off and addresses._helper is None
        assert addresses.address(30) == ACCOUNT.address(30)
    finally:
        await addresses.aclose()


def test_outside_an_event_loop_addresses_are_derived_inline() -> None:
    addresses = PrefetchedAddresses(ACCOUNT_XPUB, ahead=8, start_after=0)
    assert [addresses.address(i) for i in range(5)] == [ACCOUNT.address(i) for i in range(5)]
    assert addresses._helper is None and addresses.inline == 5

