# The two commands: `make run` (portal + worker with demo data, embedded default) and `make test`.
SHELL := /bin/bash
# Python 3.11, 3.12 or 3.13: the first of these names that runs one, or PYTHON=... to choose.
SUPPORTED := 3.11, 3.12 or 3.13
FITS := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c '$(FITS)' >/dev/null 2>&1 && { echo $$p; break; }; done)
# VENV=.venv-3.13 keeps a second interpreter's packages beside the first (CI does).
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The unit tests: everything but Chromium, a Celery worker process and a web server process.
UNIT := not browser and not worker and not live

.PHONY: run test test-unit lint format install install-runtime migrate demo worker worker-outbound web bench \
	clean browser fonts

# A venv made by another Python than the one asked for on the command line is not used quietly.
ifeq ($(origin PYTHON),command line)
ifneq ($(wildcard $(BIN)/python),)
VENV_VERSION := $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ASKED_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifneq ($(VENV_VERSION),$(ASKED_VERSION))
$(error $(VENV) was made with Python $(VENV_VERSION), not PYTHON=$(PYTHON) ($(or $(ASKED_VERSION),it does not run)): remove it (rm -rf $(VENV)) or keep both with VENV=.venv-$(or $(ASKED_VERSION),other))
endif
endif
endif

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then \
		echo "No Python $(SUPPORTED) found (tried python3, python3.13, python3.12, python3.11)." >&2; \
		echo "Install one, or name it: make $(or $(MAKECMDGOALS),run) PYTHON=/path/to/python3.12" >&2; \
		exit 1; \
	fi
	@$(PYTHON) -c '$(FITS)' >/dev/null 2>&1 || { \
		echo "PYTHON=$(PYTHON) is not Python $(SUPPORTED): $$($(PYTHON) --version 2>&1 | head -n 1)" >&2; \
		echo "Name one that is: make $(or $(MAKECMDGOALS),run) PYTHON=/path/to/python3.12" >&2; \
		exit 1; }
	@echo "making $(VENV) with $$($(PYTHON) --version) ($(PYTHON))"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "$(PYTHON) cannot make a virtualenv (Debian, Ubuntu: apt-get install python3-venv)" >&2; \
		exit 1; }

# What the portal runs on (make run); the tests and the lint add requirements-dev.txt.
$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Front-end packages from npm (the dashboard's chart); the numbers work without them.
node_modules/.installed: package.json package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm not found: the dashboard chart will not draw (its tables still show every number)"; \
	elif npm ci --no-audit --no-fund --loglevel=error; then touch $@; \
	else echo "npm ci failed: the dashboard chart will not draw (its tables still show every number)"; fi

# The browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "no /usr/bin/chromium and no root to install it: browser tests will skip outside CI"; fi

# Invoices are drawn with DejaVu Sans (names in any script); without it they fall back to Latin-1.
fonts:
	@if [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's fonts-dejavu-core for the invoices"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core; \
	else echo "no DejaVu Sans and no root to install it: invoices fall back to Latin-1"; fi

install: $(VENV)/.installed node_modules/.installed fonts

install-runtime: $(VENV)/.runtime node_modules/.installed fonts

migrate: install-runtime
	DEBUG=1 $(BIN)/python manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(BIN)/python manage.py seed_demo --base-url http://$(HOST):$(PORT)

# Web server, the attribution worker (with beat) and the outbound postback worker side by side.
# Ctrl-C stops them all: the terminal's SIGINT reaches the workers (a warm shutdown), and this
# shell sends each one SIGTERM and waits for them. When one ends by itself, the others are
# stopped too.
run: demo
	@echo "Portal on http://$(HOST):$(PORT)/  (admin: /admin/, logins printed above; Ctrl-C stops it)"
	@DEBUG=1 $(BIN)/celery -A portal worker --beat --loglevel=INFO --concurrency=1 \
		--queues=celery --hostname=attribution@%h --schedule=var/celerybeat-schedule & worker=$$!; \
	DEBUG=1 $(BIN)/celery -A portal worker --loglevel=INFO --concurrency=2 \
		--queues=outbound --hostname=outbound@%h & outbound=$$!; \
	DEBUG=1 $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT) & web=$$!; \
	stop() { trap '' INT TERM; kill -TERM $$web $$worker $$outbound 2>/dev/null; \
		wait $$web $$worker $$outbound; }; \
	trap 'stop; echo "stopped"; exit 0' INT TERM; \
	while kill -0 $$web 2>/dev/null && kill -0 $$worker 2>/dev/null \
		&& kill -0 $$outbound 2>/dev/null; do sleep 1; done; \
	stop; echo "the web server or a worker ended by itself: stopped the others" >&2; exit 1

# Attribution and outbound postbacks on workers of their own: a slow affiliate receiver can
# hold only the outbound ones.
worker: install-runtime
	$(BIN)/celery -A portal worker --loglevel=INFO --queues=celery --hostname=attribution@%h

worker-outbound: install-runtime
	$(BIN)/celery -A portal worker --loglevel=INFO --queues=outbound --hostname=outbound@%h

test: install browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The system checks and the unit tests, the quick part of `make test` (CI runs it on a second
# Python): no browser, no Celery worker process, no web server process.
test-unit: install
	DEBUG=1 $(BIN)/python manage.py check
	$(BIN)/pytest -m "$(UNIT)" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/clicks.py
	$(BIN)/python bench/postbacks.py
	$(BIN)/python bench/attribution.py
	$(BIN)/python bench/payouts.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/activity.py

clean:
	rm -rf var/test.sqlite3* var/celery .pytest_cache
