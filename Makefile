# serkit set-up: `make demo` and `make test` are the two entry points (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-all demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	# torch first at the exact version that has a CPU build here; the package range then accepts it
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

demo: install
	$(BIN)/serkit demo

bench: install
	$(BIN)/python bench/classical.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
