# logwarden: `make run` starts the whole stack with demo traffic; `make test` runs the test suite.
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= ./data
ARGS ?=
# `make test` runs the suite on this many pytest workers (one file per worker at a time, in the order of
# tests/conftest.py: the files on real clusters first), then the tests marked `solo` alone; with ARGS,
# pytest runs just what ARGS names.
TEST_WORKERS ?= 2
# The `solo` tests (the soak: a sustained rate on a 2-core machine), named by file so that pytest collects
# only them.
SOLO_TESTS := tests/test_soak.py

.PHONY: run test lint setup bench clean

# The compiled decoders (Cython) are built by the editable install: a changed .pyx/.pxi installs again.
COMPILED := $(shell find collector -name '*.pyx' -o -name '*.pxi')

$(VENV)/.installed: setup.cfg setup.py pyproject.toml environment/setup.sh $(COMPILED)
	bash environment/setup.sh

setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/logwarden up --demo --data-dir $(DATA_DIR) $(ARGS)

test: $(VENV)/.installed
	@bash environment/install-test-packages.sh
	$(VENV)/bin/ruff check .
ifeq ($(strip $(ARGS)),)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not solo"
	$(PY) -m pytest -m solo $(SOLO_TESTS)
else
	$(PY) -m pytest $(ARGS)
endif

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(DATA_DIR) .pytest_cache
