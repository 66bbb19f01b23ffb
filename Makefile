# Every target is self-sufficient on a fresh machine: it creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OFFLINE ?=

.PHONY: help venv test test-fast lint image demo bench clean

help:
	@echo "make demo   - build the wrapper, start it, sync jjb/, verify the builds ran nested"
	@echo "make test   - run the test suite (Docker tests need an engine; see README)"
	@echo "make lint   - ruff, hadolint and shellcheck"
	@echo "make image  - build the wrapper image (OFFLINE=1: offline base from Debian packages)"
	@echo "make bench  - benchmarks side by side with jenkins-jobs and the host daemon"

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	@if [ -f dind-image/Dockerfile ]; then $(BIN)/hadolint dind-image/Dockerfile; fi
	@scripts="$$(git ls-files '*.sh' '.ci/run' 'dind-image/*' | xargs -r grep -l '^#!.*sh' 2>/dev/null)"; \
	  if [ -n "$$scripts" ]; then echo "shellcheck $$scripts" | tr '\n' ' '; echo; shellcheck $$scripts; fi

# One build path: `dindjobs image` (Docker SDK), same inputs as dind-image/build.sh; OFFLINE=0 = online.
image: $(STAMP)
	$(BIN)/dindjobs image $(if $(filter-out 0,$(OFFLINE)),--offline)

# Everything from a Docker engine to proved nested builds; see scripts/demo.sh and the README.
demo:
	@scripts/demo.sh

# Benchmarks (issue 9): QUICK=1 for a run under 2 minutes, BENCH_ARGS for e.g. --no-docker.
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
