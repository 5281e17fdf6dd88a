# bench: make install | test | test-slow | demo | perf | lint
VENV       ?= .venv
PYTHON     ?= python3
PY         := $(VENV)/bin/python
BENCH      := $(VENV)/bin/bench
# The CPU wheel of torch (pip here also searches a local wheel folder). A bare `torch` would
# resolve a newer CUDA build with ~3 GB of CUDA wheels; override for a GPU machine:
#   make install TORCH_SPEC='torch'
TORCH_SPEC ?= torch==2.13.*
STAMP      := $(VENV)/.installed
# one torch thread per process while tests run side by side
TEST_ENV   := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: install test test-slow demo perf lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q '$(TORCH_SPEC)'
	$(PY) -m pip install -q -e '.[test,ray]'
	@touch $(STAMP)

test: install
	$(TEST_ENV) $(PY) -m pytest -q -n 2 --dist loadgroup

test-slow: install
	$(PY) -m pytest -q -m slow

# the smoke suite (bench/suites/smoke.toml, 5 seeds), then its leaderboard and plots, in results/demo
DEMO_DIR   ?= results/demo
demo: install
	$(BENCH) suite run smoke --results-dir $(DEMO_DIR) --workers 2
	$(BENCH) leaderboard --results $(DEMO_DIR)
	$(BENCH) plot --results $(DEMO_DIR) --out $(DEMO_DIR)/plots

perf: install
	$(BENCH) perf --json perf.json

lint: install
	$(PY) -m ruff check bench tests scripts
	$(PY) -m ruff format --check bench tests scripts

clean:
	rm -rf $(VENV) .pytest_cache
