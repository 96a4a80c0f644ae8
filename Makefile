# queuectl: `make dev` runs it, `make test` tests it. `make help` lists every target.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
WORKERS ?= 2
TEST_PROCESSES ?= 2
DEV_DIR := .dev
PACKAGES := -e shared[postgres] -e clients/python -e services/worker -e services/cli -e services/api
# Every distribution, for `make dist` (./ so that pip never takes a directory's name for a package on the index).
DISTS   := ./shared ./clients/python ./services/worker ./services/cli ./services/api

.DEFAULT_GOAL := help
.PHONY: help install test dev lint clean dist

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(BIN)/.installed ## create .venv and install every package (editable) plus the dev tools

$(BIN)/.installed: shared/pyproject.toml clients/python/pyproject.toml services/*/pyproject.toml services/worker/setup.py services/worker/queuectl_worker/_spawn.c requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PACKAGES) -r requirements-dev.txt
	@# Bytecode up front: with PYTHONDONTWRITEBYTECODE set, each CLI run would compile our sources again (~8 ms).
	$(BIN)/python -m compileall -q shared/queuectl_core clients/python/queuectl services/*/queuectl_*
	touch $@

test: install ## run the whole test suite, in $(TEST_PROCESSES) processes (most tests wait on processes and servers, not the CPU)
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadgroup

dist: install ## build a wheel of every package into dist/: queuectl-core, the Python client queuectl, the three services
	rm -rf dist
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist $(DISTS)
	@ls dist

dev: install ## the API and dashboard on http://127.0.0.1:8080 plus $(WORKERS) workers on $(DEV_DIR)/queuectl.db; Ctrl-C stops all
	@$(BIN)/python scripts/dev.py --workers $(WORKERS) --dir $(DEV_DIR)

lint: install ## static checks: ruff, hadolint on the Dockerfiles, `docker compose config` where compose exists
	$(BIN)/ruff check .
	$(BIN)/hadolint services/*/Dockerfile tests/compose/postgres/Dockerfile
	@if docker compose version >/dev/null 2>&1; then \
		QUEUECTL_API_TOKEN=lint docker compose config -q && \
		QUEUECTL_API_TOKEN=lint QUEUECTL_POSTGRES_PASSWORD=lint \
			docker compose -f docker-compose.yml -f docker-compose.postgres.yml config -q && \
		echo "docker-compose.yml, docker-compose.postgres.yml: valid"; \
	else echo "docker compose not installed: compose file not checked"; fi

clean: ## remove the virtualenv, caches, built wheels and the dev database
	rm -rf $(VENV) $(DEV_DIR) dist .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name '*.egg-info' -type d -prune -exec rm -rf {} +

# ---- containers (docker compose) ----
COMPOSE ?= docker compose
.PHONY: up up-postgres down logs ps cli compose-test

# .env holds secrets: created 0600 (umask 077 before the file exists), and an older one is made 0600 too.
.env:
	@umask 077; echo "QUEUECTL_API_TOKEN=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')" > .env
	@echo "created .env with a new QUEUECTL_API_TOKEN (log in to the dashboard with it)"

.PHONY: private-env postgres-env
private-env: .env
	@chmod 600 .env

# A password for the queue's PostgreSQL role, unless the environment or .env already has one.
postgres-env: private-env
	@if [ -z "$$QUEUECTL_POSTGRES_PASSWORD" ] && ! grep -q '^QUEUECTL_POSTGRES_PASSWORD=' .env; then \
		umask 077; echo "QUEUECTL_POSTGRES_PASSWORD=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(24))')" >> .env; \
		echo "added a new QUEUECTL_POSTGRES_PASSWORD to .env"; \
	fi

up: private-env ## build and start the API and $(WORKERS) workers in containers (http://127.0.0.1:8080)
	$(COMPOSE) up -d --build --scale worker=$(WORKERS)
	@echo "dashboard: http://127.0.0.1:8080 (token in .env)"

up-postgres: postgres-env ## the same on PostgreSQL (docker-compose.postgres.yml adds a postgres service)
	$(COMPOSE) -f docker-compose.yml -f docker-compose.postgres.yml up -d --build --scale worker=$(WORKERS)

down: ## stop and remove the containers (the data volume stays; `docker compose down -v` removes it)
	$(COMPOSE) down

logs: ## follow the containers' logs
	$(COMPOSE) logs -f --tail=100

ps: ## list the containers
	$(COMPOSE) ps -a

cli: ## run the CLI in a container: make cli ARGS="status"
	$(COMPOSE) run --rm cli $(ARGS)

compose-test: install ## start a Docker engine if needed (tests/compose/docker-up.sh) and run the compose tests
	bash tests/compose/docker-up.sh
	$(BIN)/pytest tests/compose -v

# ---- benchmarks (issue 5) ----
# The bench-only packages (the `bench` group: matplotlib, huey, rq, redis, pyinstrument) go into the same .venv.
BENCH_STAMP := $(BIN)/.bench-installed
.PHONY: bench bench-check bench-postgres bench-ceiling bench-idle

$(BENCH_STAMP): benchmarks/requirements.txt $(BIN)/.installed
	$(BIN)/pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: install $(BENCH_STAMP) ## every figure side by side, PostgreSQL's too where a server answers (6-11 min): table, benchmarks/results/latest.json, plots, the ceiling and idle cost
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/ceiling.py --output benchmarks/results/ceiling.json
	$(BIN)/python benchmarks/idle.py --output benchmarks/results/idle.json

bench-ceiling: install $(BENCH_STAMP) ## the PostgreSQL server's ceiling: claim+complete/s at 1-64 claimers, queuectl one at a time and batched vs PgQueuer and Procrastinate (~2.5 min)
	$(BIN)/python benchmarks/ceiling.py --output benchmarks/results/ceiling.json

bench-idle: install $(BENCH_STAMP) ## what 100 idle workers cost the PostgreSQL server: transactions/s, queries/s, its CPU (~30 s, root)
	$(BIN)/python benchmarks/idle.py --output benchmarks/results/idle.json

bench-postgres: install $(BENCH_STAMP) ## only the PostgreSQL figures, SQLite beside them (~4 min): benchmarks/results/postgres.json
	$(BIN)/python benchmarks/run.py --only postgres --output benchmarks/results/postgres.json

bench-check: install $(BENCH_STAMP) ## exit 1 if benchmarks/results/latest.json misses a target (runs the suite when there is none)
	$(BIN)/python benchmarks/run.py --check

# ---- chaos (issue 8) ----
.PHONY: chaos

chaos: install ## the chaos campaign (~3-5 min): soak under kills, kill -9 in a bulk enqueue, contention with p99 claim latency; reports in tests/chaos/results/
	$(BIN)/python tests/chaos/run.py

# ---- several hosts (issue 17) ----
.PHONY: multihost

multihost: install ## 3 hosts as network namespaces against a private PostgreSQL cluster (~1.5 min, root): partitions, a server restart, packet loss; report in tests/multihost/results/
	$(BIN)/python tests/multihost/run.py
