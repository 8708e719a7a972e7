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

.PHONY: run run-cluster chaos test test-services lint docs-settings vendor-js bench-hub bench-quick bench-jobs bench-rooms bench-collab bench-pipelines venv lock build matrix matrix-ci clean

# The exact versions the demo and CI run: the lock (requirements/dev.txt), then this tree
# itself without resolving anything again. pyproject.toml holds the ranges users get.
$(STAMP): pyproject.toml requirements/dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Re-pin the lock from pyproject.toml's ranges (keeps current pins; UPGRADE=1 takes the newest
# allowed), and requirements/oldest.txt: every library dependency at its lower bound.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal -q \
		$(if $(UPGRADE),--upgrade) -o requirements/dev.txt
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --universal -q \
		--resolution lowest-direct -o requirements/oldest.txt

# The wheel and sdist in dist/, checked (metadata, README rendering) and listed.
build: $(STAMP)
	rm -rf dist build
	mkdir -p var && $(BIN)/python -m build --outdir dist . >var/build.log 2>&1 || (cat var/build.log; exit 1)
	$(BIN)/twine check --strict dist/*
	$(BIN)/python -m tests.packaging.contents dist

# Oldest and newest allowed dependencies on Python 3.11 and 3.13 (noxfile.py); ARGS go to nox.
matrix: $(STAMP)
	$(BIN)/nox -s tests $(ARGS)

# The reduced matrix CI runs: oldest pins on 3.11, a fast subset.
matrix-ci: $(STAMP)
	$(BIN)/nox -s ci $(ARGS)

# ARGS="--processes N": N server processes behind nginx (docs/operations.md, "Reverse proxy").
run: $(STAMP)
	$(BIN)/python -m example.devstack $(ARGS)

# Two server processes behind nginx, worker, beat, relay, monitor.
run-cluster: $(STAMP)
	$(BIN)/python -m example.devstack --processes 2 $(ARGS)

# The whole suite against the embedded default: SQLite + an embedded Redis.
test: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(BIN)/python -m pytest $(ARGS)

# The same suite against PostgreSQL, Redis and RabbitMQ (the broker). The guide test makes
# its own startproject (SQLite, embedded Redis): `make test` runs it once.
test-services: $(STAMP)
	env $(SERVICES_ENV) $(BIN)/python -m pytest -m "not guide" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests example bench
	$(BIN)/mypy

# Regenerate the settings tables in docs/ from their declaration in src/taskstream/conf.py.
docs-settings: $(STAMP)
	$(BIN)/python -m taskstream.conf docs/*.md README.md

# The collab editor's browser bundle (Yjs + CodeMirror 6 + y-codemirror.next), rebuilt from the
# exact versions in js/package-lock.json into src/taskstream/static/taskstream/vendor/ with its
# licences. The bundle is committed: CI and users never need node or npm.
vendor-js:
	cd js && npm ci --no-audit --no-fund && node build.mjs

# Faults on a real topology (2 servers behind nginx, 2 workers, beat, Redis): what must hold,
# verified; bench/results/chaos-*.json and plots. ARGS="--short" (< 2 min, .ci/run),
# ARGS="--services" (PostgreSQL + RabbitMQ). Not part of `make test`.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(ARGS)

bench-hub: $(STAMP)
	$(BIN)/python -m bench.hub $(ARGS)

# Live jobs beside the naive Celery + Channels pattern (ARGS="--quick" for a short run).
# Issue 16's table in one small run (< 1 min on a quiet machine), each row beside its floor or
# the naive pattern from the same run; noisy, the full benches are the reference.
bench-quick: $(STAMP)
	$(BIN)/python -m bench.quick $(ARGS)

bench-jobs: $(STAMP)
	$(BIN)/python -m bench.jobs $(ARGS)

bench-rooms: $(STAMP)
	$(BIN)/python -m bench.rooms $(ARGS)

# 20 editors typing 5 chars/s into one shared document (ARGS="--quick": 1,000 edits).
bench-collab: $(STAMP)
	$(BIN)/python -m bench.collab $(ARGS)

# 1M CSV rows through the pipeline canvas vs one plain task (ARGS="--quick": 100k rows).
bench-pipelines: $(STAMP)
	$(BIN)/python -m bench.pipelines $(ARGS)

clean:
	rm -rf $(VENV) var dist .mypy_cache .ruff_cache
