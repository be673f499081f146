# Every target sets itself up first (idempotent, fast when nothing changed).
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint bench clean

setup:
	@./scripts/setup.sh

run: setup
	$(PY) -m app serve --host $(HOST) --port $(PORT)

test: setup
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -n 2 -m "not slow and not browser" $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf var .pytest_cache
