# make repro / make test: each creates .venv, installs the pinned deps (skipped
# when pyproject.toml and constraints.txt are unchanged) and runs.
PYTHON ?= python3
VENV := .venv
PORT ?= 5000
PIP := $(VENV)/bin/python -m pip --disable-pip-version-check -q
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: repro test demo ui bench lint lock

repro: $(VENV)/.deps
	dvc repro

test: $(VENV)/.test-deps
	pytest

lint: $(VENV)/.test-deps
	ruff check .

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.test-deps: $(VENV)/.deps
	$(PIP) install -c constraints.txt -e '.[test]'
	touch $@

bench: $(VENV)/.deps
	python bench/train_throughput.py

# Refresh constraints.txt from the current venv after changing a pin in pyproject.toml.
lock: $(VENV)/.test-deps
	$(VENV)/bin/python -m pip freeze --exclude-editable | grep -v '^seecam' > constraints.txt
