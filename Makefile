# Hephaestus — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CYCLES ?= 12
STAMP  := $(VENV)/.installed

.PHONY: run test install system-deps lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

## run: create the virtualenv, install, and run the agent on the bundled sample (offline, no key)
run: install
	$(BIN)/hephaestus demo --cycles $(CYCLES)

## system-deps: Debian's prometheus (promtool), prometheus-alertmanager (amtool) and chromium
##              (the dashboard's browser tests) for the tests
system-deps:
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v amtool >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "warning: missing$$missing; install with: sudo apt-get install$$missing" >&2; \
	fi

CRITICAL := hephaestus/resilience/*,hephaestus/agent/patches.py

## test: install everything the tests need, then pytest with the coverage gates
##       (>= 80 % overall, >= 95 % for the critical modules)
test: install system-deps
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered --cov-fail-under=80
	$(BIN)/python -m coverage report --include='$(CRITICAL)' --fail-under=95

lint:
	$(BIN)/ruff check hephaestus tests benchmarks
	$(BIN)/ruff format --check hephaestus

bench: install
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/http_burst.py

clean:
	rm -rf $(VENV) .coverage .coverage.* htmlcov .pytest_cache .ruff_cache .artifacts
