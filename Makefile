# logwarden: `make run` starts the whole stack with demo traffic; `make test` runs the test suite.
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= ./data
ARGS ?=

.PHONY: run test lint setup bench clean

$(VENV)/.installed: setup.cfg setup.py pyproject.toml environment/setup.sh
	bash environment/setup.sh

setup: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/logwarden up --demo --data-dir $(DATA_DIR) $(ARGS)

test: $(VENV)/.installed
	@bash environment/install-test-packages.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(DATA_DIR) .pytest_cache
