# queuectl: `make dev` runs it, `make test` tests it. `make help` lists every target.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
WORKERS ?= 2
DEV_DIR := .dev
PACKAGES := -e shared -e services/worker -e services/cli -e services/api

.DEFAULT_GOAL := help
.PHONY: help install test dev lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(BIN)/.installed ## create .venv and install every package (editable) plus the dev tools

$(BIN)/.installed: shared/pyproject.toml services/*/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PACKAGES) -r requirements-dev.txt
	touch $@

test: install ## run the whole test suite
	$(BIN)/pytest

dev: install ## run $(WORKERS) workers on a local database ($(DEV_DIR)/queuectl.db); Ctrl-C stops them
	@mkdir -p $(DEV_DIR)
	@echo "queuectl dev: $(WORKERS) workers on $(DEV_DIR)/queuectl.db"
	@echo "  in another terminal: export QUEUECTL_DB=$(CURDIR)/$(DEV_DIR)/queuectl.db; $(BIN)/queuectl status"
	QUEUECTL_DB=$(CURDIR)/$(DEV_DIR)/queuectl.db $(BIN)/queuectl worker start --count $(WORKERS)

lint: install ## static checks (ruff)
	$(BIN)/ruff check .

clean: ## remove the virtualenv, caches and the dev database
	rm -rf $(VENV) $(DEV_DIR) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
