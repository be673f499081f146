# Every target sets itself up first (idempotent, fast when nothing changed).
PY := .venv/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: setup run test test-fast lint bench train clean

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

# Continue the built-in model's training run in the background: resume runs/tiny-main when its checkpoint is
# here, else (a fresh clone keeps no runs/) warm-start it from the shipped weights at the step they record.
# scripts/train_background.sh restarts the trainer from its last checkpoint if it crashes (up to 5 times).
TRAIN_RUN ?= runs/tiny-main
TRAIN_MINUTES ?= 600
train: setup
	@mkdir -p $(dir $(TRAIN_RUN))
	@nohup scripts/train_background.sh $(TRAIN_RUN) $(TRAIN_MINUTES) $(PY) >> $(TRAIN_RUN).log 2>&1 & \
		echo "training in the background (restarted from its checkpoint if it crashes), log: $(TRAIN_RUN).log"

clean:
	rm -rf var .pytest_cache
