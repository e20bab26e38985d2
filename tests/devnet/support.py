"""Reading the devnet through the SAME parsers as the recorded fixtures."""

from __future__ import annotations

from typing import Any

import httpx
from pytoniq_core.boc.builder import Builder

from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import Reader, cell_from_boc, cell_to_boc
from krypton.adapters.chains.ton.toncenter import TonTransfer, parse_masterchain_info, parse_transactions
from krypton.adapters.chains.tron import trongrid
from krypton.domain.assets import USDT_TON

TONCENTER = "/toncenter/api/v3"
TRONGRID = "/trongrid"
# The devnet platform wallet of krypton.config (DEVNET_TON_ADDRESS), our receiving address.
OURS = TonAddress(0, bytes.fromhex("d3" * 32))
# m/44'/195'/0'/0/0 of the public BIP-44 test vector: a deposit address on Tron.
DEPOSIT = "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"
OTHER_DEPOSIT = "TSeJkUh4Qv67VNFwY8LaAxERygNdy6NQZK"


async def pay(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/control/pay", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def produce(client: httpx.AsyncClient, chain: str, count: int = 1) -> dict[str, Any]:
    response = await client.post("/control/blocks", json={"chain": chain, "count": count})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def owner_slice(owner: TonAddress) -> str:
    """The get_wallet_address argument: the owner's address in a cell, as a base64 BOC."""
    cell = Builder().store_uint(0b100, 3).store_int(owner.workchain, 8).store_bytes(owner.hash).end_cell()
    return cell_to_boc(cell)


async def our_jetton_wallet(client: httpx.AsyncClient, owner: TonAddress, master: str) -> TonAddress:
    """What the receiving side does once per allow-listed master: get_wallet_address."""
    response = await client.post(f"{TONCENTER}/runGetMethod", json={
        "address": master, "method": "get_wallet_address",
        "stack": [{"type": "slice", "value": owner_slice(owner)}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["exit_code"] == 0
    [entry] = body["stack"]
    wallet = Reader(cell_from_boc(entry["value"])).address()
    assert wallet is not None
    return wallet


async def ton_transfers(client: httpx.AsyncClient, account: TonAddress,
                        wallets: dict[TonAddress, str] | None = None, **params: Any) -> list[TonTransfer]:
    response = await client.get(f"{TONCENTER}/transactions", params={"account": account.raw, **params})
    assert response.status_code == 200, response.text
    return parse_transactions(response.json(), our_address=account, jetton_wallets=wallets or {})


async def ton_head(client: httpx.AsyncClient) -> int:
    response = await client.get(f"{TONCENTER}/masterchainInfo")
    return parse_masterchain_info(response.json())


async def tron_info(client: httpx.AsyncClient, tx_id: str, *, solid: bool = False) -> trongrid.TxInfo | None:
    api = "walletsolidity" if solid else "wallet"
    response = await client.post(f"{TRONGRID}/{api}/gettransactioninfobyid", json={"value": tx_id})
    assert response.status_code == 200, response.text
    return trongrid.parse_transaction_info(response.json())


async def tron_head(client: httpx.AsyncClient, *, solid: bool = False) -> int:
    api = "walletsolidity" if solid else "wallet"
    response = await client.post(f"{TRONGRID}/{api}/getnowblock")
    return trongrid.parse_block_number(response.json())


async def usdt_events(client: httpx.AsyncClient, contract: str = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
                      **params: Any) -> trongrid.TransferPage:
    response = await client.get(f"{TRONGRID}/v1/contracts/{contract}/events",
                                params={"event_name": "Transfer", **params})
    assert response.status_code == 200, response.text
    return trongrid.parse_contract_events(response.json())


async def incoming_trc20(client: httpx.AsyncClient, account: str = DEPOSIT,
                         **params: Any) -> trongrid.TransferPage:
    response = await client.get(f"{TRONGRID}/v1/accounts/{account}/transactions/trc20",
                                params={"only_to": "true", **params})
    assert response.status_code == 200, response.text
    return trongrid.parse_trc20_transactions(response.json())


USDT_TON_MASTER = USDT_TON.contract or ""
