# make repro / make test: each creates .venv, installs the pinned deps (skipped
# when pyproject.toml and constraints.txt are unchanged) and runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PORT ?= 5000
# not quiet: the first install downloads gigabytes, and a silent pip looks hung
PIP := $(VENV)/bin/python -m pip --disable-pip-version-check
# pip byte-compiles on one core; compileall -j 0 on all (about 1 min vs 30 s on 2 cores). The .pyc files must be
# written here: where PYTHONDONTWRITEBYTECODE is set, every process would otherwise compile torch and mlflow anew.
# The installed packages' own test suites (3,500 files) are never imported: left out, 30 s instead of 36 s.
# (A few of torch's test files are Python 3.12 syntax: compileall reports them and pip skipped them, hence || true.)
# The installer: pip, or what `make ... INSTALLER=...` names (.ci/run: uv's `uv pip install`, same pins, a fifth of the time)
INSTALLER = $(PIP) install --no-compile
INSTALL = $(INSTALLER) -c constraints.txt -e
ANNOUNCE = @echo "Installing the pinned dependencies into $(VENV): PyTorch with its CUDA wheels, about 6.6 GB, minutes."
COMPILE = $(VENV)/bin/python -m compileall -qq -j 0 -x '/tests?/' $(VENV)/lib || true
# The offline demo's params: `dvc exp run -S` writes exactly these values into params.yaml (tests/project/test_make.py);
# `git checkout params.yaml` returns to the tutorial's defaults.
DEMO := -S data.source=synthetic -S data.val_size=500 -S data.synthetic.train_size=5000 -S train.epochs=4
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: repro test test-fast demo ui bench lint lock

repro: $(VENV)/.deps .dvc/plots_offline.html
	dvc repro

# Both cores, a file (or a folder sharing one expensive fixture) per worker at a time, end-to-end files first
# (tests/conftest.py); CI runs this, and its log ends with the 20 slowest set-ups and tests.
test: $(VENV)/.test-deps
	pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=20

# The loop while coding: the unit tests (mirroring src/seecam/) and the checks of the repo's own files, no
# dvc repro, servers or browser; under 3 minutes on a 2-core machine.
test-fast: $(VENV)/.test-deps
	pytest -n 2 --dist loadfile --no-loadscope-reorder tests/unit tests/project

lint: $(VENV)/.test-deps
	ruff check .

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(ANNOUNCE)
	$(INSTALL) .
	$(COMPILE)
	touch $@

# `dvc plots show/diff` pages with Vega inlined from vl-convert-python, so they render offline (.dvc/config names it)
.dvc/plots_offline.html: $(VENV)/.deps
	$(VENV)/bin/python -m seecam.plots_offline $@

# One pip run for the package and its test extra (a fresh CI machine resolves once); .deps is then up to date too.
$(VENV)/.test-deps: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(ANNOUNCE)
	$(INSTALL) '.[test]'
	$(COMPILE)
	touch $(VENV)/.deps $@

# The MLflow UI on 127.0.0.1:$(PORT) against the project's store; prints the runs table, chart view and compare URLs.
# `make ui UI_FLAGS=--access-log` prints the server's line per request too.
ui: $(VENV)/.deps
	seecam ui --port $(PORT) $(UI_FLAGS)

# The whole pipeline offline on synthetic data (README: Quick start). On a first run DVC warns "No file hash info
# found ... It won't be created" once per output not built yet: true and harmless, so filtered out.
demo: $(VENV)/.deps .dvc/plots_offline.html
	dvc exp run $(DEMO) 2> >(grep --line-buffered -v "No file hash info found" >&2)
	@echo "Open reports/index.html. params.yaml holds the demo's values (git diff params.yaml); git checkout params.yaml returns to the tutorial's."

bench: $(VENV)/.bench-deps
	python bench/train_throughput.py
	python bench/gradcam_throughput.py

# The benchmarks' baseline is the tutorial's own loop (bench/tutorial.py), which needs torchvision; seecam does not.
$(VENV)/.bench-deps: $(VENV)/.deps
	$(INSTALL) '.[bench]'
	$(COMPILE)
	touch $@

# Refresh constraints.txt from the current venv after changing a pin in pyproject.toml.
lock: $(VENV)/.test-deps
	$(VENV)/bin/python -m pip freeze --exclude-editable | grep -v '^seecam' > constraints.txt
