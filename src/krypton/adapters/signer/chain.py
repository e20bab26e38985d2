"""What the signer asks of the chain, through TON Center API v3 (the devnet serves the same):
the wallet's seqno, sendBoc, a message looked up by its hash, and the chain's time.

The expiry decision uses the chain's time (the last masterchain block's gen_utime), never
this machine's clock: "valid_until has passed and the message is not on chain" is only safe
to act on when the chain itself is past valid_until.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from krypton.adapters.chains.ton import toncenter
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.cells import address_cell, cell_to_boc


class ChainError(Exception):
    """The API could not be asked (network, 5xx, a malformed answer): try again later."""


class Refused(Exception):
    """The wallet contract refused the external (sendBoc's error): nothing was sent."""


@dataclass(frozen=True, slots=True)
class Landed:
    """The wallet's transaction for one of our externals."""

    tx_hash: str
    # (destination raw, value) of each message the action phase sent
    sent: tuple[tuple[str, int], ...]
    action_failed: str | None  # why nothing was sent, or None
    # the hash of each message sent, in the order of `sent`: its destination's transaction
    # is found by it (a bounce)
    out_hashes: tuple[str, ...] = ()
    total_fees: int = 0  # nanotons the chain charged the wallet for the transaction


@dataclass(frozen=True, slots=True)
class Delivery:
    """The destination's transaction for a message the wallet sent."""

    tx_hash: str
    bounced: bool  # the destination refused it and sent the value back
    # the hashes of the messages that transaction sent, in order (a jetton wallet's
    # internal_transfer to the recipient's jetton wallet: the next hop to follow)
    out_hashes: tuple[str, ...] = ()


class WalletChain:
    def __init__(self, http: httpx.AsyncClient, base_url: str, *, api_key: str | None = None) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"X-API-Key": api_key} if api_key else {}

    async def seqno(self, wallet: TonAddress) -> int | None:
        """The wallet contract's seqno, None while no contract is deployed there."""
        response = await self._request("POST", "/runGetMethod", json={
            "address": wallet.raw, "method": "seqno", "stack": []})
        if response.status_code == 409:
            return None
        body = self._json(response)
        if body.get("exit_code") != 0 or not body.get("stack"):
            raise ChainError(f"seqno get-method failed (exit code {body.get('exit_code')})")
        return int(str(body["stack"][0]["value"]), 16)

    async def send(self, boc: str) -> None:
        response = await self._request("POST", "/message", json={"boc": boc})
        if response.status_code == 422:
            raise Refused(str(self._json(response, ok=(422,)).get("error", "refused")))
        self._json(response)

    async def find(self, message_hash: str) -> Landed | None:
        response = await self._request("GET", "/transactionsByMessage",
                                       params={"msg_hash": message_hash, "direction": "in"})
        rows = self._json(response).get("transactions") or []
        if not rows:
            return None
        row = rows[0]
        action = (row.get("description") or {}).get("action") or {}
        failed = None
        if action and not action.get("success", True):
            failed = f"the wallet's action phase failed (result code {action.get('result_code')})"
        outs = row.get("out_msgs") or []
        sent = tuple((str(m["destination"]), int(m["value"])) for m in outs)
        return Landed(str(row["hash"]), sent, failed, tuple(str(m.get("hash") or "") for m in outs),
                      int(row.get("total_fees") or 0))

    async def delivery(self, message_hash: str) -> Delivery | None:
        """The destination's transaction for a message the wallet sent, once it is on chain:
        bounced when it aborted and sent the value back (a bounced message)."""
        response = await self._request("GET", "/transactionsByMessage",
                                       params={"msg_hash": message_hash, "direction": "in"})
        rows = self._json(response).get("transactions") or []
        if not rows:
            return None
        row = rows[0]
        aborted = bool((row.get("description") or {}).get("aborted"))
        outs = row.get("out_msgs") or []
        back = any(m.get("bounced") for m in outs)
        return Delivery(str(row["hash"]), aborted and back, tuple(str(m.get("hash") or "") for m in outs))

    async def jetton_wallet(self, owner: TonAddress, master: TonAddress) -> TonAddress:
        """`owner`'s jetton wallet under `master`, asked of the master (get_wallet_address)."""
        response = await self._request("POST", "/runGetMethod", json={
            "address": master.raw, "method": "get_wallet_address",
            "stack": [{"type": "slice", "value": cell_to_boc(address_cell(owner))}]})
        try:
            return toncenter.parse_wallet_address(self._json(response))
        except toncenter.PayloadError as exc:
            raise ChainError(f"get_wallet_address: {exc}") from None

    async def now(self) -> int:
        """The chain's time: the last masterchain block's gen_utime."""
        body = self._json(await self._request("GET", "/masterchainInfo"))
        return int(body["last"]["gen_utime"])

    async def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            return await self._http.request(method, self._base + path, headers=self._headers, **options)
        except httpx.HTTPError as exc:
            raise ChainError(f"{method} {path}: {type(exc).__name__}") from None

    @staticmethod
    def _json(response: httpx.Response, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
        if response.status_code not in ok:
            request = response.request
            raise ChainError(f"{request.method} {request.url.path}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ChainError("the answer is not JSON") from None
        if not isinstance(body, dict):
            raise ChainError("the answer is not a JSON object")
        return body
