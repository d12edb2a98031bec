# Two doors: `make demo` (set up, then run the demo) and `make test` (set up, then run the tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned in the same pip command as everything else (the CPU wheel on disk).
	$(BIN)/python -m pip install -q "torch==2.13.0" -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/scoregrad demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV)
