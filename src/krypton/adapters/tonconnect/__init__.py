"""TON Connect: checking what a connected wallet proves (ton_proof)."""
