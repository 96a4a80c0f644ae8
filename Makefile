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

dev: install ## the API and dashboard on http://127.0.0.1:8080 plus $(WORKERS) workers on $(DEV_DIR)/queuectl.db; Ctrl-C stops all
	@$(BIN)/python scripts/dev.py --workers $(WORKERS) --dir $(DEV_DIR)

lint: install ## static checks (ruff)
	$(BIN)/ruff check .

clean: ## remove the virtualenv, caches and the dev database
	rm -rf $(VENV) $(DEV_DIR) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +
