"""Prometheus series that Krypton derives from its own records (the event log)."""
