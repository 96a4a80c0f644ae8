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

# ---- benchmarks (issue 5) ----
# The bench-only packages (the `bench` group: matplotlib, huey, rq, redis, pyinstrument) go into the same .venv.
BENCH_STAMP := $(BIN)/.bench-installed
.PHONY: bench bench-check

$(BENCH_STAMP): benchmarks/requirements.txt $(BIN)/.installed
	$(BIN)/pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: install $(BENCH_STAMP) ## every figure of the benchmark suite side by side (~6 min): table, benchmarks/results/latest.json, plots
	$(BIN)/python benchmarks/run.py

bench-check: install $(BENCH_STAMP) ## exit 1 if benchmarks/results/latest.json misses a target (runs the suite when there is none)
	$(BIN)/python benchmarks/run.py --check
