# Everything installs from nothing into .venv (Python) and node_modules (Azurite), both git-ignored.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AZURITE := node_modules/.bin/azurite-blob
AZURITE_VERSION ?= 3.35.0
PYTEST_ARGS ?=

.PHONY: install test demo bench bench-startup lint clean

install: $(STAMP) $(AZURITE)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench,dask]'
	touch $@

$(AZURITE):
	npm install --no-save --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) demo/demo.py

bench: install
	$(PY) benchmarks/run.py

bench-startup: install
	$(PY) benchmarks/startup.py

lint: $(STAMP)
	$(VENV)/bin/ruff check lsmigrate tests benchmarks

clean:
	rm -rf $(VENV) .venv-ls node_modules .pytest_cache demo-work benchmarks/work
