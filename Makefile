# Two commands set everything up: `make demo` and `make test`.
# Each creates .venv when missing and installs into it; torch 2.13.0 goes in
# first so nothing else pulls the multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-core
TEST_STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
TORCH  := torch==2.13.0

.PHONY: demo test bench install wheel-check clean

# The demo needs only aelab and its own dependencies; the test extra (Ray,
# MLflow, Playwright, PostgreSQL driver, ...) is installed by `make test`.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/aelab train configs/mnist-vae.yaml --out runs/demo
	$(BIN)/aelab report runs/demo

# One pytest worker per CPU (pytest-xdist): 5 min 21 s against 8 min 14 s in
# one process on this 2-vCPU VM; the tests share no state but tmp paths.
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n auto

# A wheel built from this tree, installed into a fresh venv outside it, runs a
# shipped config by name from another directory (CI runs this).
wheel-check: $(STAMP)
	bash .ci/wheel-check.sh $(BIN)/python

# Depends on the Makefile too, so a venv made before a package was added here gets it.
$(BENCH_STAMP): $(TEST_STAMP) Makefile
	-$(BIN)/python -m pip install -q keras tensorflow-cpu
	-$(BIN)/python -m pip install -q pygad
	-$(BIN)/python -m pip install -q --no-deps pythae==0.1.2
	-$(BIN)/python -m pip install -q imageio
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/epoch_time.py
	$(BIN)/python benchmarks/study_throughput.py
	$(BIN)/python benchmarks/ga_speed.py
	bash .ci/postgres.sh $(BIN)/python benchmarks/cluster_overhead.py
	$(BIN)/python benchmarks/lso_speed.py
	$(BIN)/python benchmarks/whole_command.py
	$(BIN)/python benchmarks/gan_epoch.py
	$(BIN)/python benchmarks/fused_speed.py --check
	$(BIN)/python benchmarks/study_fusion.py --check
	test -d runs/bench-judge || $(BIN)/aelab train configs/mnist14-judge.yaml --out runs/bench-judge
	$(BIN)/python benchmarks/pythae_zoo.py --judge runs/bench-judge

clean:
	rm -rf $(VENV) runs .pytest_cache
