# Every target makes .venv first if it is missing (or if pyproject.toml changed).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Notebook kernels run `python` from PATH: make it the venv's.
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg
# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning made
# training ~13x slower (benchmarks/README.md).
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo test labs recordings bench gpu-check lint clean

# constraints.txt: the exact versions this machine needs; pyproject.toml holds only ranges.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# every lab's model trained briefly, every lab graded, runs/demo/index.html (`genlab demo --help`;
# e.g. make demo DEMO_ARGS="--no-grade")
demo: $(STAMP)
	$(BIN)/genlab demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

labs: $(STAMP)
	$(BIN)/genlab labs

# the public checks' answers on their own inputs, for the student build (docs/adding-a-lab.md);
# one lab: make recordings LABS=03
recordings: $(STAMP)
	$(BIN)/python -m tests.labs.recordings $(LABS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# on a CUDA machine: the gpu-marked tests, every lab's hidden GPU tests against its solution,
# 16-mixed vs 32-true per model; runs/bench/gpu_check.json (without CUDA it says so and exits 0)
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check shared autograder tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
