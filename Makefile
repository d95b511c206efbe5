# The two commands: `make demo` and `make test`. Each bootstraps .venv on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Prefect's environment: home inside the project, no telemetry, a start-up timeout that fits 2 cores.
export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
# Quiet consoles; run logs still reach the Prefect API (and the UI) at INFO.
export PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL ?= WARNING

.PHONY: install bytecode demo test lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==0.13.9'
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP) bytecode
	$(BIN)/erpsync demo

# Byte-code of the project's own modules, so that the many processes the tests start (servers, CLI runs) do not
# each compile them again: where PYTHONDONTWRITEBYTECODE is set nothing writes it otherwise (measured: an
# `erpsync run` spent 14 of its 25 s compiling sources). Stale files are ignored by Python, never wrong.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 erpsync connectors core flows tasks tests bench > /dev/null

test: $(STAMP) bytecode
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 -q

clean:
	rm -rf $(VENV) .prefect .erpsync .pytest_cache .mypy_cache .ruff_cache build *.egg-info
