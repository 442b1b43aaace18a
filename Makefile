# ordergraph — `make run` to serve the demo, `make test` to run every check.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

NODE_STAMP := node_modules/.package-lock.json

.PHONY: run serve test lint typecheck migrate seed schema bench soak venv node clean

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "ordergraph needs Python >= 3.11 (python3.11 or newer on PATH)" >&2; exit 1; fi
	@echo "creating $(VENV) with $(PYTHON)"
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

# GraphiQL's assets and the JavaScript test tools, from the committed lock file. Without npm the
# API still runs; only GraphiQL (and the browser and audit tests) need these.
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "npm not found: GraphiQL's assets are not installed (the API runs without them;"; \
		echo "install Node.js and npm, then rerun make, for GraphiQL)"; \
	fi

node:
	@$(MAKE) --no-print-directory $(NODE_STAMP) || echo "npm ci failed: GraphiQL will be unavailable"

run: venv node
	$(BIN)/python -m app dev

serve: venv
	$(BIN)/python -m app serve

migrate: venv
	$(BIN)/python -m app migrate

seed: venv
	$(BIN)/python -m app seed

schema: venv
	$(BIN)/python -m app schema

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

test: lint typecheck node
	$(BIN)/python -m pytest

# The benchmark (see README): PostgreSQL at 127.0.0.1:5432 and wrk, installed here when missing.
bench: venv
	@command -v wrk >/dev/null 2>&1 || { \
		echo "wrk is missing: installing it with apt-get"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; \
	} || { echo "make bench needs wrk: install it (Debian/Ubuntu: sudo apt-get install wrk)" >&2; exit 1; }
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.subscribers

# Events under load on two processes (PostgreSQL and Redis at their usual addresses; see
# bench/soak.py): 1013 closes, delivery completeness, commit-to-handler lag.
soak: venv
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
