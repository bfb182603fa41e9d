# omnibind: `make demo` runs the main job, `make test` runs the whole suite. Both set up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system-deps data-deps starter test test-fast lint demo caption clean

setup: $(STAMP)

# Debian packages the project needs (installed only when run as root with apt available).
system-deps:
	@bash scripts/install_system_deps.sh

# Debian packages the starter dataset is built from (apt only as root; otherwise prints what to install).
data-deps:
	@bash scripts/install_data_deps.sh

$(STAMP): pyproject.toml requirements-cpu.txt scripts/install_system_deps.sh scripts/install_postgres.sh \
		scripts/install_data_deps.sh
	@$(MAKE) --no-print-directory system-deps
	@$(MAKE) --no-print-directory data-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-cpu.txt -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not browser" tests

# The offline starter dataset (about 10,000 image–text–audio examples, 300 MB, ~2 minutes).
starter: setup
	$(VENV)/bin/omnibind data starter data/starter --seed 0

demo: setup
	$(PY) scripts/demo.py

# After `make demo`: a picture captioner and a sound describer on the demo model's locked towers (one seed each),
# scored beside the two baselines, with a few test generations printed beside their references.
caption: setup
	$(PY) experiments/captioning/run.py --seeds 0 --runs demo_out/captioning --show 4

clean:
	rm -rf $(VENV) demo_out data/starter .pytest_cache .ruff_cache
