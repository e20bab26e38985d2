"""Krypton: a self-hosted payment platform for TON, USDT and Telegram Stars."""

__version__ = "0.1.0"
