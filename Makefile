# Two commands on a fresh machine with only Python:
#   make demo   sets up .venv and runs the main job
#   make test   sets up .venv and runs the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out
RESIDENTS ?= 300000


.PHONY: system-deps setup demo test test-fast test-postgres bench typecheck lock clean

setup: $(STAMP)

# Pinned versions come from requirements.lock; the project itself is installed editable without
# re-resolving, so a fresh machine gets exactly the set that was tested.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(BIN)/tillit demo --out $(DEMO_OUT) --residents $(RESIDENTS)

# Debian packages the tests use: Chromium renders the HTML report headless and runs the web pages' browser
# tests (Playwright drives it; axe-core checks each page); docker-compose parses the compose file (no engine needed). Installed when missing and apt-get is usable (CI runs as root).
system-deps:
	@command -v chromium >/dev/null && command -v docker-compose >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium docker-compose >/dev/null; \
	  else echo "make: install Debian packages chromium and docker-compose for the report and compose tests"; fi; }

test: setup system-deps
	$(BIN)/python -m mypy
	@if [ -x /usr/bin/chromium ]; then echo "make: browser tests (tests/browser) run in /usr/bin/chromium"; \
	 else echo "make: NO BROWSER - tests/browser will be SKIPPED: install Debian's chromium (/usr/bin/chromium) to run them"; fi
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not integration"

# The coordinator's ledger and race tests on PostgreSQL (a user allowed to create databases):
#   make test-postgres TILLIT_TEST_POSTGRES_URL=postgresql+psycopg://tillit:tillit@127.0.0.1:5432/tillit
test-postgres: setup
	TILLIT_TEST_POSTGRES_URL=$${TILLIT_TEST_POSTGRES_URL:?set TILLIT_TEST_POSTGRES_URL} $(BIN)/python -m pytest tests/coordinator -k postgresql -rs

bench: setup
	$(BIN)/python -m benchmarks.validation_vs_pandera
	$(BIN)/python -m benchmarks.synth_time
	$(BIN)/python -m benchmarks.federation_dpgd
	$(BIN)/python -m benchmarks.logreg_convergence --quick

typecheck: setup
	$(BIN)/python -m mypy

# Regenerate the lock from pyproject ranges in a throwaway venv (run by a developer, not by CI).
lock:
	rm -rf /tmp/tillit-lock && $(PYTHON) -m venv /tmp/tillit-lock
	/tmp/tillit-lock/bin/pip install --quiet -e '.[dev]'
	{ /tmp/tillit-lock/bin/pip freeze --exclude-editable | grep -v -E '^(-e|setuptools==)'; echo setuptools==80.9.0; } > requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache
