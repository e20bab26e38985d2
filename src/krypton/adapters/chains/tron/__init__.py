"""Tron rail, pure layer: addresses, deposit-address derivation and TronGrid / node parsers.

Nothing here does I/O or reads the clock; the watcher and the HTTP clients call these.
"""
