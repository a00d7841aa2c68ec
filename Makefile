# make run   set everything up and serve the portal at http://127.0.0.1:8000
# make test  set everything up and run the test suite
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHON

.PHONY: run test deps deps-dev system-deps system-deps-test assets migrate seed worker bench lint

run: deps migrate
	@$(FLASK) ca init
	@$(FLASK) demo seed
	@$(FLASK) orgs issue-keys
	@echo
	@echo "E-Sign Portal: http://$(HOST):$(PORT)"
	@echo "Demo logins (demo mode only):"
	@$(FLASK) demo logins
	@echo
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 2 --timeout 120 --access-logfile - wsgi:app

test: deps-dev system-deps-test
	$(BIN)/ruff check .
	$(BIN)/pytest

worker: deps migrate
	$(FLASK) jobs worker

bench: deps-dev
	@for b in bench/[!_]*.py; do $(BIN)/python $$b || exit 1; done

lint: deps-dev
	$(BIN)/ruff check .

migrate: deps
	@$(FLASK) db upgrade

deps: system-deps $(VENV)/.installed static/vendor/.installed

deps-dev: deps $(VENV)/.installed-dev

system-deps:
	@scripts/system-deps.sh run

system-deps-test:
	@scripts/system-deps.sh test

$(VENV)/.installed: requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required (python3 --version)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

static/vendor/.installed: package.json package-lock.json scripts/vendor-assets.sh static/js/cosign-deps.entry.js
	npm ci --no-audit --no-fund --loglevel=error
	scripts/vendor-assets.sh
	@touch $@
