# The two commands: `make run` (portal + worker with demo data, embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format install migrate demo worker web bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput

demo: migrate
	DEBUG=1 $(BIN)/python manage.py seed_demo

# Web server and a Celery worker (with beat) side by side; Ctrl-C stops both.
run: demo
	@echo "Portal on http://$(HOST):$(PORT)/  (admin: /admin/, logins printed above)"
	@trap 'kill 0' EXIT INT TERM; \
	DEBUG=1 $(BIN)/celery -A portal worker --beat --loglevel=INFO --concurrency=1 \
		--schedule=var/celerybeat-schedule & \
	DEBUG=1 $(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)

worker: install
	$(BIN)/celery -A portal worker --loglevel=INFO

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/clicks.py

clean:
	rm -rf var/test.sqlite3* var/celery .pytest_cache
