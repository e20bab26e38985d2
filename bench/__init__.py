"""Krypton's HTTP benchmark (`make bench`, i.e. `.venv/bin/python -m bench`); not a test suite.

See bench/__main__.py for what is measured.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# tests.support.servers starts the throwaway PostgreSQL; make it importable from any directory.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
