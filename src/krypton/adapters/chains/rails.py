"""Where payers send money on each rail, from configuration (no private key anywhere)."""

from __future__ import annotations

from typing import Literal

from krypton.adapters.chains.ton import address as ton_address
from krypton.adapters.chains.ton import fee_collector
from krypton.adapters.chains.tron.prefetch import PrefetchedAddresses
from krypton.app.ports import CollectorPlan
from krypton.domain.errors import DomainError

Network = Literal["devnet", "testnet", "mainnet"]


def ton_network(network: Network) -> ton_address.Network:
    # The devnet hands out plain (mainnet-form) addresses; testnet accepts both forms.
    return "mainnet" if network == "mainnet" else "testnet"


class ChainRails:
    def __init__(self, network: Network, ton: str | None, tron: PrefetchedAddresses | None,
                 fee_owner: str | None = None, *, stars: bool = False) -> None:
        self.network = network
        self._stars = stars
        self._ton = ton_address.parse(ton, network=ton_network(network)).raw if ton else None
        self._fee_owner = ton_address.parse(fee_owner, network=ton_network(network)) if fee_owner \
            else None
        self._tron = tron

    def ton_address(self, merchant_ton_address: str | None) -> str:
        address = merchant_ton_address or self._ton
        if address is None:
            raise DomainError("TON payments need a receiving address: set KRYPTON_TON_ADDRESS or "
                              "the merchant's TON address, or leave TON methods out.",
                              field="methods", code="rail_not_configured")
        return address

    def stars_available(self) -> bool:
        return self._stars

    def canonical_ton_address(self, text: str) -> str:
        return ton_address.parse(text, network=ton_network(self.network)).raw

    def fee_collector(self, destination: str, fee_bps: int, min_withdrawal: int,
                      deploy_amount: int) -> CollectorPlan:
        if self._fee_owner is None:
            raise DomainError("Fee collectors need an owner: set KRYPTON_FEE_COLLECTOR_OWNER or "
                              "KRYPTON_TON_ADDRESS.", field="owner", code="rail_not_configured")
        config = fee_collector.FeeCollectorConfig(
            self._fee_owner, ton_address.parse(destination, network="testnet"), fee_bps, min_withdrawal)
        testnet = self.network == "testnet"
        contract = fee_collector.address(config)
        return CollectorPlan(
            address=contract.raw, address_friendly=contract.friendly(bounceable=True, testnet=testnet),
            owner=config.owner.raw, destination=config.destination.raw, fee_bps=fee_bps,
            min_withdrawal=min_withdrawal, state_init=fee_collector.state_init_boc(config),
            deploy_amount=deploy_amount,
            deploy_link=fee_collector.deploy_link(config, deploy_amount, testnet=testnet))

    def tron_address(self, index: int) -> str:
        if self._tron is None:
            raise DomainError("USDT on Tron needs KRYPTON_TRON_XPUB (an account extended public "
                              "key, m/44'/195'/0'), or leave usdt_trc20 out.",
                              field="methods", code="rail_not_configured")
        return self._tron.address(index)
