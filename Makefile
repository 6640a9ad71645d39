# synchub — the two commands a person needs: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test lint typecheck check bench demo demo-stop clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install synchub with its dev tools

test: $(STAMP) ## run the whole suite (starts and stops whatever it needs)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check hub projections connectors demo tests bench
	$(VENV)/bin/ruff format --check hub projections connectors demo tests bench
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test ## what CI runs

demo: $(STAMP) ## real Tryton + TimeTagger, a small consulting firm, synchub on SQLite
	$(PY) -m demo

demo-stop: $(STAMP) ## stop the servers `python -m demo --keep-running` left up (by PID)
	$(PY) -m demo --stop

bench: $(STAMP)
	$(PY) bench/ingest.py --events 100000
	$(PY) bench/rebuild.py --events 100000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo

distclean: clean ## also the local Tryton/TimeTagger installs and golden database
	rm -rf .services
