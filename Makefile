# Two commands set everything up: `make demo` and `make test`.
# Each creates .venv when missing and installs into it; torch 2.13.0 goes in
# first so nothing else pulls the multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-core
BENCH_STAMP := $(VENV)/.installed-bench
TORCH  := torch==2.13.0

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/aelab train configs/mnist-vae.yaml --out runs/demo
	$(BIN)/aelab report runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Depends on the Makefile too, so a venv made before a package was added here gets it.
$(BENCH_STAMP): $(STAMP) Makefile
	-$(BIN)/python -m pip install -q keras tensorflow-cpu
	-$(BIN)/python -m pip install -q pygad
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/epoch_time.py
	$(BIN)/python benchmarks/study_throughput.py
	$(BIN)/python benchmarks/ga_speed.py
	bash .ci/postgres.sh $(BIN)/python benchmarks/cluster_overhead.py
	$(BIN)/python benchmarks/lso_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
