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

# The MLflow UI on 127.0.0.1:$(PORT) against the project's store; prints the experiment and compare URLs.
ui: $(VENV)/.deps
	seecam ui --port $(PORT)

demo: $(VENV)/.deps
	dvc exp run -S data.source=synthetic -S data.val_size=1000 -S train.epochs=8

bench: $(VENV)/.deps
	python bench/train_throughput.py
	python bench/gradcam_throughput.py

# Refresh constraints.txt from the current venv after changing a pin in pyproject.toml.
lock: $(VENV)/.test-deps
	$(VENV)/bin/python -m pip freeze --exclude-editable | grep -v '^seecam' > constraints.txt
