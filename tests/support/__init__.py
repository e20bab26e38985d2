"""Test-support helpers (throw-away PostgreSQL / Redis servers, see ``servers.py``)."""
