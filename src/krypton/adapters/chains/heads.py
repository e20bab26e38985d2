"""Each chain's newest block with the time the chain gave it: the chain's clock.

One provider call per chain, the one the watcher's lag already made for the block number
(TON Center v3 ``/masterchainInfo``; a Tron node's ``/wallet/getnowblock``): the answer
carries both. The parsers are pure functions, tested on the recorded real responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from krypton.adapters.chains.provider import Priority
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.chains.ton.toncenter import PayloadError
from krypton.adapters.chains.tron.client import TronGridClient
from krypton.adapters.chains.tron.trongrid import MalformedResponse
from krypton.app.chain_time import ChainHead


async def ton_head(client: TonCenterClient) -> ChainHead:
    payload = await client.provider.get_json("/masterchainInfo", priority=Priority.CONFIRM)
    return parse_ton_head(payload)


async def tron_head(client: TronGridClient) -> ChainHead:
    body = await client.provider.post_json("/wallet/getnowblock", json={}, priority=Priority.CONFIRM)
    return parse_tron_head(body)


def parse_ton_head(payload: object) -> ChainHead:
    """``GET /masterchainInfo`` -> the last masterchain block's seqno and `gen_utime` (seconds)."""
    last = _object(_object(payload, "response", PayloadError).get("last"), "response.last",
                   PayloadError)
    seqno = _whole(last.get("seqno"), "response.last.seqno", PayloadError)
    seconds = _whole(last.get("gen_utime"), "response.last.gen_utime", PayloadError)
    return ChainHead(seqno, datetime.fromtimestamp(seconds, UTC))


def parse_tron_head(body: object) -> ChainHead:
    """``/wallet/getnowblock`` -> the block's number and header `timestamp` (milliseconds)."""
    header = _object(_object(body, "block", MalformedResponse).get("block_header"), "block_header",
                     MalformedResponse)
    raw = _object(header.get("raw_data"), "block_header.raw_data", MalformedResponse)
    # Protobuf JSON omits zero values: a missing number is block 0 (a missing time is not).
    number = _whole(raw.get("number", 0), "block_header.raw_data.number", MalformedResponse)
    millis = _whole(raw.get("timestamp"), "block_header.raw_data.timestamp", MalformedResponse)
    return ChainHead(number, datetime.fromtimestamp(millis // 1000, UTC)
                     + timedelta(milliseconds=millis % 1000))


def _object(value: object, where: str, error: type[ValueError]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise error(f"{where} should be a JSON object, got {type(value).__name__}")
    return value


def _whole(value: object, where: str, error: type[ValueError]) -> int:
    """A non-negative integer as a JSON number or a decimal string (TON Center sends both)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise error(f"{where} should be a non-negative integer, got {value!r}")
