"""A TRC-20 transfer carries its block's time to ingest, which judges lateness by it."""

from __future__ import annotations

from datetime import UTC, datetime

from krypton.adapters.chains.tron.transfer import block_time
from krypton.adapters.chains.tron.trongrid import parse_contract_events, parse_trc20_transactions
from tests.adapters.chains.tron.recorded import load


def test_recorded_block_timestamps_become_block_times() -> None:
    [listed] = parse_trc20_transactions(load("trongrid-trc20-transactions.json")).transfers
    assert listed.block_timestamp == 1784641290000
    assert listed.observed(1).block_time == datetime(2026, 7, 21, 13, 41, 30, tzinfo=UTC)
    events = [t for t in parse_contract_events(load("trongrid-contract-events-usdt-transfer.json")).transfers
              if not t.counterfeit]
    assert events
    for event in events:
        assert event.block_timestamp is not None
        assert event.observed(1).block_time == datetime.fromtimestamp(event.block_timestamp / 1000, UTC)


def test_milliseconds_are_kept_exactly() -> None:
    assert block_time(1784641290999) == datetime(2026, 7, 21, 13, 41, 30, 999000, tzinfo=UTC)
    assert block_time(None) is None
