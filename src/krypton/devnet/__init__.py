"""The devnet: a local chain simulator, so the embedded default needs no internet.

It holds TON and Tron balances, produces blocks (by hand or on a timer), accepts payments
(TON with comments, USDT jettons, USDT TRC-20), and can inject bounces, failed receipts,
counterfeit tokens, reorgs and provider faults (5xx, 429, latency, hangs). Over HTTP it
speaks the documented subset of TON Center v3 and TronGrid / java-tron, so the very
client and parser code used against mainnet runs against it.

devnet        Devnet: both simulators, the faults and the injected clock; its `genesis`
              names the chain (a new one each server boot: see bootstrap.py)
ton, tron     the simulators (pure, in memory, deterministic for a seed, a nonce and a clock)
http          create_devnet_app(devnet): the provider APIs and /control
timer         run_block_timer(devnet, ton_interval, tron_interval)
"""

from krypton.devnet.devnet import Devnet
from krypton.devnet.http import create_devnet_app
from krypton.devnet.timer import run_block_timer

__all__ = ["Devnet", "create_devnet_app", "run_block_timer"]
