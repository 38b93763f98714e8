# `make demo` and `make test` are the two commands; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := registry agents mcp_servers gateway meshgate

# Real peers the tests drive (DESIGN.md §8), each in its own prefix: a2a-handler
# pins mcp<2, so it cannot share .venv; the MCP Inspector CLI 0.15 and mcp-remote
# run on Node 20.
TOOLS := .tools
HANDLER := $(TOOLS)/a2a-handler/.installed
NODE_TOOLS := $(TOOLS)/node/.installed

.PHONY: demo test lint typecheck imports pytest peers chromium redis-server bench format clean

# (Re)install when .venv is missing or older than pyproject.toml or this file (its extras).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,consul,otlp,redis]'
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

peers: $(HANDLER) $(NODE_TOOLS) chromium redis-server

# The /ui browser test drives Debian's chromium through Playwright (no browser
# download); CI runs as root. Where apt-get cannot install it the test skips.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium) \
	  || echo "chromium could not be installed: the /ui browser test will be skipped"

# The /mcp result cache is tested against Debian's redis-server, which the test
# starts on a loopback port. Where apt-get cannot install it those tests skip.
redis-server:
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server) \
	  || echo "redis-server could not be installed: the Redis cache tests will be skipped"

$(HANDLER): Makefile
	test -x $(TOOLS)/a2a-handler/bin/python || $(PYTHON) -m venv $(TOOLS)/a2a-handler
	$(TOOLS)/a2a-handler/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/a2a-handler/bin/python -m pip install --quiet 'a2a-handler==0.4.0'
	touch $@

# Skipped (and the tests that need it say so) where npm is absent.
$(NODE_TOOLS): Makefile
	if command -v npm >/dev/null; then \
	  npm install --silent --no-audit --no-fund --prefix $(TOOLS)/node \
	    '@modelcontextprotocol/inspector@0.15.0' 'mcp-remote@0.15.1' && touch $@; \
	else echo "npm not found: tests that drive the MCP Inspector will be skipped"; fi

pytest: $(STAMP) peers
	$(BIN)/coverage erase
	$(BIN)/pytest --cov --cov-branch --cov-report=term $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/registry.py

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(TOOLS) .artifacts .meshgate .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
