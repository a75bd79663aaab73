# Set-up is part of every target: a fresh clone needs nothing but Python 3.11 and this file.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= cpu,dev
STAMP := $(VENV)/.installed

.PHONY: install chat test test-all lint bench eval-search clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: anything unpinned would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

chat: $(STAMP)
	$(BIN)/shopbot chat

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m ''

lint: $(STAMP)
	$(BIN)/ruff check bot retrieval model tests
	$(BIN)/mypy bot retrieval model

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_search.py

eval-search: $(STAMP)
	$(BIN)/shopbot eval search --judgments ../shared/eval/search/crowdflower_dev.csv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
