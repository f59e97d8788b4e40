# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
# Extras are what users install; development tools come from pyproject.toml's dependency groups.
EXTRAS ?= amazon,google,zstd,parquet,iceberg
GROUPS ?= dev
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)
PYTEST_ARGS ?=

AIRFLOW_2_VERSION ?= 2.11.2

.PHONY: install test test-airflow2 lint unit fuzz demo docs bench build clean races

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	# --compile-bytecode: this machine sets PYTHONDONTWRITEBYTECODE, and Airflow runs ~50% slower without .pyc
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode \
		"apache-airflow==$(AIRFLOW_VERSION)" -e ".[$(EXTRAS)]" $(addprefix --group ,$(GROUPS))
	rm -f $(VENV)/.installed-*
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint unit

# The differential fuzz of the line roads (tests/unit/test_roads_fuzz.py) with the "fuzz" hypothesis
# profile: 10,000 examples per test instead of the 150 of `make test` (about half an hour on two busy cores).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -p no:logging -q --timeout=0 --hypothesis-show-statistics tests/unit/test_roads_fuzz.py

# The same suite on Airflow 2.11, in a venv of its own.
test-airflow2:
	$(MAKE) unit VENV=.venv-airflow2 AIRFLOW_VERSION=$(AIRFLOW_2_VERSION) GROUPS=test

# Two tasks racing for one window, many more times than `make test` does (RACES per store).
RACES ?= 100
races: install
	MIXPANEL_RACES=$(RACES) $(BIN)/python -m pytest tests/integration/transfers/test_concurrent_writers.py -s -p no:logging

demo: install
	$(BIN)/python scripts/demo.py

docs: install
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: install
	$(BIN)/python benchmarks/run.py

build: install
	rm -rf dist && $(BIN)/python -m build --installer uv && $(BIN)/twine check dist/*

clean:
	rm -rf $(VENV) .venv-* dist build docs/_build .pytest_cache .mypy_cache .ruff_cache

# A production-shaped Airflow (Postgres, Redis, api-server, scheduler, dag-processor, triggerer, two
# Celery workers) with the wheel built from this checkout, driven through the REST API; installs what
# it needs itself. See devtools/deployment/README.md. DEPLOYMENT_ARGS e.g. "--keep --no-kill", "--measure".
DEPLOYMENT_ARGS ?=
.PHONY: test-deployment test-deployment-airflow2

test-deployment:
	bash devtools/deployment/run.sh --airflow 3 $(DEPLOYMENT_ARGS)

# The same on Airflow 2.11, lighter: Postgres, webserver, scheduler with the LocalExecutor, triggerer.
test-deployment-airflow2:
	bash devtools/deployment/run.sh --airflow 2 $(DEPLOYMENT_ARGS)
