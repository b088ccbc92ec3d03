# baocao: `make up` starts everything, `make test` runs every test. See README.md.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STACK  := $(PY) -m deploy.local.stack

.DEFAULT_GOAL := help
.PHONY: help up down status clean-data servers test test-unit lint schemas lock bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@

# The plans `make up` runs (BAOCAO_PLANS, comma-separated, as the services read it): checked
# first, so a mistake in a plan file stops here with its file, line and path, and warnings
# (a reporting unit without contacts...) are listed without stopping the start.
comma := ,
PLANS  = $(subst $(comma), ,$(or $(BAOCAO_PLANS),data/plans/kh-nq35-ngoc-hoi.yaml))

up: $(VENV)/.installed ## check the plans, provision what is missing, start servers, services, Prometheus and Alertmanager
	$(PY) -m contracts.plan check $(PLANS)
	$(STACK) up

servers: $(VENV)/.installed ## start only Kafka, FerretDB and Mailpit
	$(STACK) up --servers-only

down: ## stop exactly what `make up` started (by PID); data is kept
	$(PYTHON) -m deploy.local.stack down

status: ## what runs and whether it is healthy
	$(PYTHON) -m deploy.local.stack status

clean-data: ## delete the servers' data (stack must be down)
	$(PYTHON) -m deploy.local.stack clean-data

test: $(VENV)/.installed ## every test; starts the servers it needs and stops those it started
	$(PY) -m deploy.local.stack provision --for-tests
	$(PY) -m pytest --durations=25 $(PYTEST_ARGS)

bench: $(VENV)/.installed ## benchmarks on the real stack (ONLY=P1 or ONLY=P0,P3); see bench/README.md
	$(PY) -m deploy.local.stack provision
	$(PY) -m bench $(if $(ONLY),--only $(ONLY))

test-unit: $(VENV)/.installed ## unit tests only, no servers
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

schemas: $(VENV)/.installed ## regenerate contracts/schemas and the AsyncAPI document
	$(PY) -m contracts.generate

lock: ## re-pin requirements.lock from pyproject.toml
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet -e '.[dev]'
	( echo '# Whole dependency tree, pinned (pip freeze of a venv built from pyproject.toml [dev]). Regenerate with: make lock'; \
	  .lockenv/bin/pip freeze --exclude-editable ) > requirements.lock && rm -rf .lockenv
