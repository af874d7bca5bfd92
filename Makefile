# consent-ledger: `make run` starts everything, `make test` runs the whole suite.
# Both install what they need first (a virtualenv in .venv, the Kafka jars in .stack/cache).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
# The developer's command (tools/cli.py): not installed, so it runs from this directory.
DEV    := $(BIN)/python -m tools

.PHONY: install run test lint typecheck unit schemas stack-up stack-down stack-status bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: $(PYTHON) is " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[make] installing Python dependencies into $(VENV) ..."
	@$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

run: install  ## Kafka, PostgreSQL, intake and projector in the foreground; Ctrl-C stops all
	@$(DEV) run

test: install lint typecheck  ## the whole suite against a real Kafka broker and PostgreSQL
	@$(BIN)/pytest

unit: install  ## only the tests that need no stack
	@$(BIN)/pytest tests/unit

lint: install
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: install
	@$(BIN)/mypy events projections services tools tests

schemas: install  ## re-export events/schemas after changing an event model
	@$(BIN)/consent-ledger schemas export

bench: install  ## throughput, latency and memory on a stack of its own; see bench-results/
	@$(DEV) bench

stack-up: install
	@$(DEV) stack up --detach

stack-down: install
	@$(DEV) stack down

stack-status: install
	@$(DEV) stack status

clean: stack-down
	rm -rf $(VENV) .stack .mypy_cache .ruff_cache .pytest_cache .hypothesis
