# The quick start: `make demo` then `make test`. Everything installs into .venv from the project's own files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel. A bare range would pull the newest CUDA build (several GB).
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/imgx demo-catalog build/demo-catalog
	$(BIN)/imgx run recipes/demo.yaml

# Two pytest-xdist workers by default, as CI runs it (a worker that runs a Ray test starts its own local Ray): on a
# 2-core AVX2 EPYC VM 24.4 minutes against 34 in one process, the machine's memory in use peaking at 6.8 GiB. One
# process (0) on a machine with fewer than 2 cores or less than 12 GiB of memory, where two workers that each build
# models could run out; TEST_WORKERS=0 or =2 chooses.
TEST_WORKERS ?= $(shell [ $$(nproc) -ge 2 ] && awk '/MemTotal/ {exit !($$2 >= 12582912)}' /proc/meminfo && echo 2 || echo 0)

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist load

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py

clean:
	rm -rf build .pytest_cache
