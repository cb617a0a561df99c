# Two commands for a fresh clone: `make demo` and `make test`. Each sets up .venv itself
# from the pinned constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test ui bench lint install

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,bench,dg]"
	touch $(STAMP)

## Materialize the example project into DuckDB through Dagster and print what was loaded.
demo: $(STAMP)
	$(PY) -m dltplus_dagster.demo

## The whole test suite (real DuckDB, PostgreSQL, Redis, Dagster, webserver, browser).
## Starts PostgreSQL/Redis when installed but stopped; installs Chromium when missing.
test: $(STAMP)
	bash tests/services/ensure_services.sh
	bash tests/services/ensure_browser.sh || echo "chromium is missing: tests/test_prod_browser.py will fail (see docs/testing.md)"
	$(PY) -m pytest -n $${TEST_WORKERS:-2} --dist loadfile tests

## The Dagster UI on http://127.0.0.1:3000 for the example project.
ui: $(STAMP)
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} $(VENV)/bin/dagster dev -w workspace.yaml

## Benchmarks against plain dlt and dagster-dlt (exits non-zero when a target is missed).
bench: $(STAMP)
	$(PY) -m bench

## ruff on the code, tests, benchmarks and examples; mypy (strict, see [tool.mypy]) on the package.
lint: $(STAMP)
	$(VENV)/bin/ruff check dltplus_dagster tests bench examples
	$(VENV)/bin/mypy dltplus_dagster
