# Two commands a newcomer needs: `make demo` (run Krypton) and `make test` (run every test).
SHELL := /bin/bash
PY := .venv/bin/python
UV = $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: demo serve test test-python test-contracts lint bench install assets system-deps clean soak

# The Python environment, from the lock file (uv installs itself first if missing).
install: .venv/.synced
.venv/.synced: pyproject.toml uv.lock
	@if ! command -v uv >/dev/null 2>&1 && [ ! -x .tools/bin/uv ]; then \
		python3 -m pip install --quiet --disable-pip-version-check --target .tools/lib uv; \
		mkdir -p .tools/bin && ln -sf ../lib/bin/uv .tools/bin/uv; fi
	@$(UV) sync --frozen --quiet
	@touch $@

# Browser libraries the pages use (TON Connect UI), from npm, served by Krypton itself. Without
# Node the checkout still works, without the "Connect wallet" button.
assets: web-assets/node_modules/.installed
web-assets/node_modules/.installed: web-assets/package.json web-assets/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd web-assets && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "assets: npm not found; the checkout works without the wallet button"; fi

demo: install assets
	$(PY) -m krypton.cli demo

serve: install assets
	$(PY) -m krypton.cli serve

system-deps:
	@bash scripts/install-system-deps.sh

lint: install
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/lint-imports

test-python: install assets system-deps
	$(PY) -m pytest

test-contracts:
	cd contracts && npm ci --no-audit --no-fund --loglevel=error && npm test

test: lint test-python test-contracts

# The simulator's long run: SOAK_SEEDS worlds per database from SOAK_FIRST (tests/simulation).
SOAK_SEEDS ?= 5000
SOAK_FIRST ?= 1000
soak: install system-deps
	$(PY) -m pytest tests/simulation/test_simulation.py -q -p no:logging \
		--sim-seeds $(SOAK_SEEDS) --sim-first-seed $(SOAK_FIRST)

bench: install system-deps
	$(PY) -m bench
	$(PY) -m bench.matching
	$(PY) -m bench.e2e
	$(PY) -m bench.webhooks
	$(PY) -m bench.scale
	$(PY) -m bench.shop

clean:
	rm -rf .venv .tools data contracts/node_modules web-assets/node_modules
