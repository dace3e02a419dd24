# The two commands: `make run` (portal + worker with demo data, embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install migrate demo worker web bench clean browser

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Front-end packages from npm (the dashboard's chart); the numbers work without them.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the dashboard chart will not draw (its tables still show every number)"; fi

# The browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "no /usr/bin/chromium and no root to install it: browser tests will skip outside CI"; fi

install: $(VENV)/.installed node_modules/.installed

migrate: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(BIN)/python manage.py seed_demo --base-url http://$(HOST):$(PORT)

# Web server and a Celery worker (with beat) side by side; Ctrl-C stops both.
run: demo
	@echo "Portal on http://$(HOST):$(PORT)/  (admin: /admin/, logins printed above)"
	@trap 'kill 0' EXIT INT TERM; \
	DEBUG=1 $(BIN)/celery -A portal worker --beat --loglevel=INFO --concurrency=1 \
		--schedule=var/celerybeat-schedule & \
	DEBUG=1 $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

worker: install
	$(BIN)/celery -A portal worker --loglevel=INFO

test: install browser
	$(BIN)/pytest $(PYTEST_ARGS)

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
