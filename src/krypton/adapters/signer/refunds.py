"""The refund use case's `RefundSigner` over the signer's socket client: a refund transfer
to a payer's wallet, and its status."""

from __future__ import annotations

from krypton.adapters.signer.client import SignerClient, SignerUnavailable, Transfer
from krypton.app.refunds import Sent, SignerDown
from krypton.domain.signer_policy import DestinationKind, RequestKind

NO_SUCH_REQUEST = "no such request"  # the signer's answer for a request it never recorded


class SignerRefunds:
    def __init__(self, client: SignerClient) -> None:
        self._client = client

    async def send(self, request_id: str, asset: str, amount: int, destination: str,
                   ledger_entry_id: int) -> Sent:
        transfer = Transfer(request_id, RequestKind.REFUND.value, asset, amount, destination,
                            DestinationKind.PAYER_WALLET.value, ledger_entry_id)
        try:
            [result] = await self._client.transfer(transfer)
        except (SignerUnavailable, OSError, TimeoutError) as exc:
            raise SignerDown(str(exc)) from None
        return Sent(str(result["status"]), result.get("reason"), result.get("refusal"))

    async def status(self, request_id: str) -> Sent | None:
        try:
            found = await self._client.status(request_id)
        except SignerUnavailable as exc:
            if NO_SUCH_REQUEST in str(exc):
                return None
            raise SignerDown(str(exc)) from None
        except (OSError, TimeoutError) as exc:
            raise SignerDown(str(exc)) from None
        # A signer that does not report deliveries (no "delivered" key) means delivered.
        delivered = found.get("delivered", True)
        if found.get("bounced"):
            delivered = False
        return Sent(str(found["status"]), found.get("failure"), delivered=delivered)
