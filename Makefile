# `make test` works on a fresh clone with only Python 3.11+ and pip: it builds .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-quick test-all lint demo bench clean

# Every interpreter here that both this project (3.11+) and apache-beam support.
PYTHONS ?= 3.11 3.12 3.13

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,beam]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every test, on two workers (pytest-xdist; each has its own local server). `make test-quick`
# leaves out the slow and integration tests, for a fast loop while editing the engine.
test: lint
	$(BIN)/pytest -n 2 --dist worksteal

test-quick: $(STAMP)
	$(BIN)/pytest -n 2 --dist worksteal -m "not slow and not integration"

# The suite on each of $(PYTHONS), each in its own .venv-X.Y (CI runs `make test` only).
test-all:
	set -e; for v in $(PYTHONS); do \
	  echo "== Python $$v"; \
	  if command -v pyenv >/dev/null; then \
	    py=$$(PYENV_VERSION=$$(pyenv latest $$v) pyenv which python$$v); \
	  else py=$$(command -v python$$v); fi; \
	  $$py -m venv .venv-$$v; \
	  .venv-$$v/bin/python -m pip install --quiet -c constraints.txt -e '.[test,beam]'; \
	  .venv-$$v/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist worksteal; \
	done

demo: $(STAMP)
	$(BIN)/python examples/pipeline.py --local

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,beam,bench]'
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) .venv-3.* .pytest_cache .mypy_cache .ruff_cache .hypothesis
