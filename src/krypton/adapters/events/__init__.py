"""Sinks the event log is exported to (app/export.py): one module per broker."""
