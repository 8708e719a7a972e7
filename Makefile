# taskstream: `make run` starts the demo, `make test` runs the suite. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PYTHONPATH := $(CURDIR):$(CURDIR)/src

# The production-shaped backends every machine here runs.
SERVICES_ENV := DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
	REDIS_URL=redis://127.0.0.1:6379/0 \
	CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672//

.PHONY: run test test-services lint docs-settings bench-hub bench-jobs bench-rooms bench-pipelines venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m example.devstack

# The whole suite against the embedded default: SQLite + an embedded Redis.
test: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(BIN)/python -m pytest $(ARGS)

# The same suite against PostgreSQL, Redis and RabbitMQ (the broker).
test-services: $(STAMP)
	env $(SERVICES_ENV) $(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests example bench
	$(BIN)/mypy

# Regenerate the settings tables in docs/ from their declaration in src/taskstream/conf.py.
docs-settings: $(STAMP)
	$(BIN)/python -m taskstream.conf docs/*.md README.md

bench-hub: $(STAMP)
	$(BIN)/python -m bench.hub $(ARGS)

# Live jobs beside the naive Celery + Channels pattern (ARGS="--quick" for a short run).
bench-jobs: $(STAMP)
	$(BIN)/python -m bench.jobs $(ARGS)

bench-rooms: $(STAMP)
	$(BIN)/python -m bench.rooms $(ARGS)

# 1M CSV rows through the pipeline canvas vs one plain task (ARGS="--quick": 100k rows).
bench-pipelines: $(STAMP)
	$(BIN)/python -m bench.pipelines $(ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
