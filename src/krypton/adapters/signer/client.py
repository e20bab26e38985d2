"""The client the API and workers use to ask the signer for a transfer: over its Unix
socket, one frame out, one frame back (protocol in server.py). It holds no key material."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krypton.adapters.signer.server import frame, read_frame
from krypton.app.ports import SignerUnavailable as PortUnavailable
from krypton.app.ports import SignOutcome, SignRequest


class SignerUnavailable(Exception):
    """The signer's socket cannot be reached, or it answered with an error."""


@dataclass(frozen=True, slots=True)
class Transfer:
    """What to ask for (see domain/signer_policy.TransferRequest)."""

    request_id: str
    kind: str
    asset: str
    amount: int
    destination: str
    destination_kind: str
    ledger_entry_id: int
    comment: str | None = None  # a supplier payment's text comment (see server.py)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "request_id": self.request_id, "kind": self.kind, "asset": self.asset, "amount": self.amount,
            "destination": self.destination, "destination_kind": self.destination_kind,
            "ledger_entry_id": self.ledger_entry_id}
        if self.comment is not None:
            body["comment"] = self.comment
        return body


class SignerClient:
    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self._path = path
        self._timeout = timeout

    async def transfer(self, *transfers: Transfer) -> list[dict[str, Any]]:
        """One result per transfer, in order: status broadcast | recorded | refused (with
        refusal and reason). Several transfers in one call go out in one external when the
        wallet allows it."""
        answer = await self._call({"type": "transfer", "requests": [t.as_json() for t in transfers]})
        results: list[dict[str, Any]] = answer["results"]
        return results

    async def status(self, request_id: str) -> dict[str, Any]:
        answer = await self._call({"type": "status", "request_id": request_id})
        result: dict[str, Any] = answer["results"][0]
        return result

    async def _call(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            reader, writer = await asyncio.open_unix_connection(str(self._path))
        except OSError as exc:
            raise SignerUnavailable(f"cannot reach the signer at {self._path}: {exc.strerror}") from None
        try:
            writer.write(frame(payload))
            await writer.drain()
            answer = await asyncio.wait_for(read_frame(reader), self._timeout)
        finally:
            writer.close()
        if not isinstance(answer, dict):
            raise SignerUnavailable("the signer closed the connection without an answer")
        if "error" in answer:
            raise SignerUnavailable(f"the signer refused the frame: {answer['error']}")
        return answer


class SignerPort:
    """The use cases' `Signer` port (app/ports.py) over the socket client."""

    def __init__(self, client: SignerClient) -> None:
        self._client = client

    async def transfer(self, requests: Sequence[SignRequest]) -> list[SignOutcome]:
        transfers = [Transfer(r.request_id, r.kind, r.asset, r.amount, r.destination,
                              r.destination_kind, r.ledger_entry_id, r.comment) for r in requests]
        try:
            results = await self._client.transfer(*transfers)
        except (SignerUnavailable, OSError, TimeoutError) as exc:
            raise PortUnavailable(str(exc) or type(exc).__name__) from None
        return [_outcome(r) for r in results]

    async def status(self, request_id: str) -> SignOutcome | None:
        try:
            result = await self._client.status(request_id)
        except SignerUnavailable as exc:
            if "no such request" in str(exc):
                return None
            raise PortUnavailable(str(exc)) from None
        except (OSError, TimeoutError) as exc:
            raise PortUnavailable(str(exc) or type(exc).__name__) from None
        return _outcome(result)


def _outcome(result: dict[str, Any]) -> SignOutcome:
    return SignOutcome(str(result["request_id"]), str(result["status"]), result.get("refusal"),
                       result.get("reason") or result.get("failure"), result.get("message_hash"),
                       result.get("tx_hash"), bool(result.get("bounced", False)),
                       result.get("delivered"), int(result.get("network_fee") or 0))
