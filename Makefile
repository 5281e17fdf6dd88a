# bench: make install | test | test-integration | test-slow | demo | benchmark | minatar | perf | lint | docs
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

.PHONY: install test test-integration smoke-check test-slow demo benchmark minatar perf lint docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q '$(TORCH_SPEC)'
	$(PY) -m pip install -q -e '.[test,ray,minatar]'
	@touch $(STAMP)

test: install
	$(TEST_ENV) $(PY) -m pytest -q -n 2 --dist loadgroup
	$(MAKE) smoke-check

# the smoke suite against its committed baseline (exit 1 on a regression); its datasets are
# built in a private Minari root beside the runs, so a user's own builds play no part
SMOKE_DIR  ?= results/smoke-check
smoke-check: install
	MINARI_DATASETS_PATH=$(abspath $(SMOKE_DIR))/minari \
	  $(BENCH) suite run smoke --results-dir $(SMOKE_DIR) --workers 2 --quiet
	$(BENCH) check --results $(SMOKE_DIR) --baseline results/baselines/smoke.parquet

# the integration tests: a two-node Ray cluster on loopback (needs root; skips otherwise), a plugin
# installed into a fresh venv, Ray started locally. CI runs them after `make test`.
test-integration: install
	$(TEST_ENV) $(PY) -m pytest -q -n 2 --dist loadgroup -m integration

test-slow: install
	$(PY) -m pytest -q -m slow

# the smoke suite (bench/suites/smoke.toml, 5 seeds), then its leaderboard and plots, in results/demo
DEMO_DIR   ?= results/demo
demo: install
	$(BENCH) suite run smoke --results-dir $(DEMO_DIR) --workers 2
	$(BENCH) leaderboard --results $(DEMO_DIR)
	$(BENCH) plot --results $(DEMO_DIR) --out $(DEMO_DIR)/plots

# the core suite (bench/suites/core.toml: about an hour on 2 cores), then README's results
# table and the committed `bench check` baseline, both from its parquet files
BENCHMARK_DIR ?= results/core
benchmark: install
	$(BENCH) suite run core --results-dir $(BENCHMARK_DIR) --workers 2
	$(BENCH) suite report core --results-dir $(BENCHMARK_DIR) --readme docs/measured.md
	$(BENCH) check --results $(BENCHMARK_DIR) --baseline results/baselines/core.parquet --update
	$(BENCH) leaderboard --results $(BENCHMARK_DIR)

# the minatar suite (bench/suites/minatar.toml: five MinAtar games, 10 seeds, about an hour on
# 2 cores), then its table in README and docs/measured.md and its `bench check` baseline
MINATAR_DIR ?= results/minatar
minatar: install
	$(BENCH) suite run minatar --results-dir $(MINATAR_DIR) --workers 2
	$(BENCH) suite report minatar --results-dir $(MINATAR_DIR) --readme README.md
	$(BENCH) suite report minatar --results-dir $(MINATAR_DIR) --readme docs/measured.md
	$(BENCH) check --results $(MINATAR_DIR) --baseline results/baselines/minatar.parquet --update
	$(BENCH) leaderboard --results $(MINATAR_DIR)

perf: install
	$(BENCH) perf --json perf.json

lint: install
	$(PY) -m ruff check bench tests scripts docs
	$(PY) -m ruff format --check bench tests scripts docs
	$(PY) -m mypy

# the documentation site (mkdocs.yml, docs/) into site/; any warning fails it, a broken link or
# anchor included. The algorithm pages are generated from their configs (docs/hooks.py).
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 BENCH_PLUGINS=0 $(PY) -m mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) .pytest_cache site
