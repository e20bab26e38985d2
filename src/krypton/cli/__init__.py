"""The `krypton` command line: one module per command group (main.py wires them)."""

from krypton.cli.main import app

__all__ = ["app"]
