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

.PHONY: demo test lint typecheck imports pytest peers chromium redis-server bench fuzz format clean \
	validate-deploy promtool compose-smoke chaos

# (Re)install when .venv is missing or older than pyproject.toml or this file (its extras).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,consul,otlp,redis]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meshgate up

test: lint typecheck imports validate-deploy pytest

# The deployment files, checked offline (DESIGN.md §9): both compose profiles with
# the compose CLI, each k8s overlay rendered by kubectl's kustomize and checked
# against the Kubernetes schemas, and Prometheus' config where promtool is present.
K8S_VERSION ?= 1.31.0
COMPOSE_FILE := compose/docker-compose.yml
validate-deploy: $(STAMP) promtool
	$(BIN)/docker-compose -f $(COMPOSE_FILE) config -q
	$(BIN)/docker-compose -f $(COMPOSE_FILE) --profile embedded config -q
	for overlay in k8s/overlays/*/; do \
	  $(BIN)/kubectl kustomize $$overlay | $(BIN)/kubernetes-validate --strict --quiet -k $(K8S_VERSION) - \
	    || { echo "$$overlay does not validate"; exit 1; }; \
	done
	if command -v promtool >/dev/null; then promtool check config compose/prometheus.yml; \
	else echo "promtool not found: compose/prometheus.yml not checked"; fi

# Debian's prometheus package brings promtool. Where apt-get cannot install it the
# Prometheus config check (and its test) is skipped.
promtool:
	command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus) \
	  || echo "prometheus could not be installed: compose/prometheus.yml will not be checked"

# The compose mesh built and run in containers, checked end to end (not in `test`:
# it needs a Docker engine, which compose/smoke.sh starts itself where it can).
compose-smoke: $(STAMP)
	bash compose/smoke.sh

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

# The long chaos run (tests/chaos/): three rounds of every fault on the sqlite
# registry and on Consul (the double), a table each; `make test` runs a short one.
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --rounds 3

bench: $(STAMP)
	$(BIN)/python bench/registry.py

# The long forms of tests/fuzz (schemathesis), tests/properties (hypothesis) and
# tests/security: MESHGATE_FUZZ_SCALE times the cases `make test` runs, random seeds.
FUZZ_SCALE ?= 20
fuzz: $(STAMP)
	MESHGATE_FUZZ_SCALE=$(FUZZ_SCALE) $(BIN)/pytest -p no:cacheprovider -q \
	  tests/fuzz tests/properties tests/security $(PYTEST_ARGS)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(TOOLS) .artifacts .meshgate .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
