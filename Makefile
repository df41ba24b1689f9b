# Hephaestus — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CYCLES ?= 12
STAMP  := $(VENV)/.installed

.PHONY: run test install system-deps generate lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

## run: create the virtualenv, install, and run the agent on the bundled sample (offline, no key)
run: install
	$(BIN)/hephaestus demo --cycles $(CYCLES)

## system-deps: the Debian packages the tests need, installed with apt-get when run as root.
##   One `binary:package` pair a line: a test that needs a binary adds its line here.
DEBIAN_DEPS += prometheus:prometheus
DEBIAN_DEPS += promtool:prometheus
DEBIAN_DEPS += prometheus-alertmanager:prometheus-alertmanager
DEBIAN_DEPS += amtool:prometheus-alertmanager
DEBIAN_DEPS += docker-compose:docker-compose
DEBIAN_DEPS += chromium:chromium

system-deps:
	@missing=""; \
	for pair in $(DEBIAN_DEPS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	missing="$$(printf '%s\n' $$missing | sort -u | tr '\n' ' ')"; \
	if [ -z "$${missing# }" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "warning: missing $$missing; install with: sudo apt-get install $$missing" >&2; \
	fi

## generate: write the Prometheus rules, Grafana dashboards and data sources from the
##           metrics catalog (committed; a test fails when they are out of date)
generate: install
	$(BIN)/python -m hephaestus.observability

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
