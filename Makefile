# `make demo` and `make test` are the two commands; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := registry agents mcp_servers gateway meshgate

.PHONY: demo test lint typecheck imports pytest bench format clean

# (Re)install when .venv is missing or older than pyproject.toml.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,consul]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshgate up

test: lint typecheck imports pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/pytest --cov --cov-branch --cov-report=term $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/registry.py

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .meshgate .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
