"""Telegram: Mini App initData verification (`init_data.py`: the bot-token HMAC check and
Telegram's Ed25519 third-party check)."""
