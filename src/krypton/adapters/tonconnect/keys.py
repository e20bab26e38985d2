"""A wallet's public key as the chain tells it (its get_public_key get-method through TON
Center), for ton_proof from a wallet whose state_init Krypton cannot read."""

from __future__ import annotations

from krypton.adapters.chains.provider import ProviderError
from krypton.adapters.chains.ton.address import TonAddress
from krypton.adapters.chains.ton.client import TonCenterClient
from krypton.adapters.chains.ton.toncenter import PayloadError, parse_get_method, stack_int


async def chain_public_key(client: TonCenterClient, wallet: TonAddress) -> bytes | None:
    """The 32-byte key, or None when the account has no such method, is not deployed, or the
    providers do not answer: the proof is then refused as proving nothing."""
    try:
        exit_code, stack = parse_get_method(await client.run_get_method(wallet, "get_public_key"),
                                            "get_public_key")
        if exit_code != 0 or len(stack) != 1:
            return None
        key = stack_int(stack[0], "get_public_key")
    except (ProviderError, PayloadError):
        return None
    if not 0 <= key < 1 << 256:
        return None
    return key.to_bytes(32, "big")
