# synchub — the two commands a person needs: `make test` and (next issue) `make demo`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install synchub with its dev tools

test: $(STAMP) ## run the whole suite (starts and stops whatever it needs)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check hub projections connectors tests bench
	$(VENV)/bin/ruff format --check hub projections connectors tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

bench: $(STAMP)
	$(PY) bench/ingest.py --events 100000
	$(PY) bench/rebuild.py --events 100000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
