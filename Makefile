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

.PHONY: demo test labs bench lint clean

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

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check shared autograder tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
