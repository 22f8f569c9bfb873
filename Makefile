# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run PORT=8080 HOST=0.0.0.0`; PORT may also come from the environment, HOST only
# from the command line (shells set HOST to the machine's name).
HOST = 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint format typecheck pytest demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the server on the embedded SQLite database, with the demo data loaded
## (`make run PORT=8080 HOST=0.0.0.0` to listen elsewhere).
run: $(STAMP)
	$(BIN)/codoc-fhir demo
	$(BIN)/codoc-fhir serve --host $(HOST) --port $(PORT)

## Load the demo data (only what is missing) into the database of CODOC_DATABASE_URL.
demo: $(STAMP)
	$(BIN)/codoc-fhir demo

## Install, lint, type-check and run the whole test suite (SQLite and PostgreSQL).
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) codoc.db codoc.db-wal codoc.db-shm
