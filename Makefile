# Two commands for a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgresql+psycopg://127.0.0.1:5432/test
TEST_PG_URL := $(if $(DATABASE_URL),$(DATABASE_URL),$(PG_URL))

.PHONY: run test openapi spectral bench scan drill clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# Spectral and the OWASP ruleset, pinned by package-lock.json (the contract scan of openapi.yaml).
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## Set up and serve the API with gunicorn on $HOST:$PORT (default 127.0.0.1:8000).
run: $(VENV)/.runtime
	$(VENV)/bin/gunicorn -c gunicorn.conf.py

## Set up and run every check: lint, bandit, unit + HTTP tests on SQLite and PostgreSQL, coverage.
test: $(VENV)/.dev node_modules/.installed
	$(PY) -m tests.databases $(TEST_PG_URL)  # refuse a non-test database before spending minutes
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit -q -r api security -ll
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict clients/python/resistance_api_client clients/examples  # the generated client as used
	node_modules/.bin/spectral lint openapi.yaml --fail-severity=warn
	rm -f .coverage
	$(PY) -m pytest --cov --cov-report= -p no:cacheprovider
	TEST_DATABASE_URL=$(TEST_PG_URL) $(PY) -m pytest --cov --cov-append --cov-report= -p no:cacheprovider
	$(PY) -m coverage report
	$(PY) -m tests.run_schemathesis

## Rewrite openapi.yaml from the app (a test fails when they differ), then the Python client
## clients/python from it (tests/test_python_client.py runs the same generator command).
openapi: $(VENV)/.dev
	JWT_SECRET_KEY=openapi-generation-only-secret-0123456789 DATABASE_URL=sqlite:// \
		$(VENV)/bin/flask --app wsgi spec write openapi.yaml
	rm -rf clients/python
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/openapi-python-client generate --path openapi.yaml \
		--config clients/openapi-python-client.yaml \
		--custom-template-path clients/templates --meta pdm --fail-on-warning --output-path clients/python

## The OWASP contract scan alone (make test runs it too).
spectral: node_modules/.installed
	node_modules/.bin/spectral lint openapi.yaml --fail-severity=warn

## Benchmark the API against a bare-Flask ceiling, then a scale run (README: Benchmark).
## Options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--database postgresql --scale 0".
## wrk is a Debian package: this target does not install it (that needs root), it says how.
bench: $(VENV)/.dev
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is missing: install it once, as root, with .ci/system-packages" >&2; exit 2; }
	$(PY) -m bench.run $(BENCH_ARGS)

## sqlmap and wapiti against the app under gunicorn on loopback (README: Dynamic scan); options
## through SCAN_ARGS, e.g. make scan SCAN_ARGS="--keep artifacts/scan". Not part of `make test`.
## Both are Debian packages: this target does not install them (that needs root), it says how.
scan: $(VENV)/.dev
	@command -v sqlmap >/dev/null 2>&1 && { [ -n "$$WAPITI" ] || command -v wapiti >/dev/null 2>&1; } || { echo "sqlmap or wapiti is missing: install them once, as root, with .ci/system-packages" >&2; exit 2; }
	$(PY) -m tests.run_scan $(SCAN_ARGS)

## The multi-site failover drill: etcd, Patroni + PostgreSQL 15, Redis with Sentinel and two API
## replicas in three network namespaces (deploy/multisite/), nginx in front, load through it;
## loses the primary's whole site, checks every acknowledged write, times the outage, rejoins the
## site. Needs root; skips with a message naming .ci/system-packages where namespaces or packages
## are missing (fails under REQUIRE_SERVICES=1). About 80 s, 4 minutes at most; DRILL_KEEP_LOGS=1
## keeps every run's logs in artifacts/drill-logs/ (a failed run's are always kept).
drill: $(VENV)/.dev
	$(PY) -m tests.drill

clean:
	rm -rf $(VENV) node_modules .coverage htmlcov .pytest_cache
