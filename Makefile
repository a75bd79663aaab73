# Set-up is part of every target: a fresh clone needs nothing but Python 3.11 and this file.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= cpu,dev
STAMP := $(VENV)/.installed

.PHONY: install chat test test-all lint audit-refresh audit-online bench eval-search docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: anything unpinned would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

# tests/test_docker.py checks docker/compose.yaml against the Compose Specification with check-jsonschema, in
# a venv of its own: it needs ruamel.yaml>=0.18, which rasa-sdk 3.16 forbids in the project's venv
TOOLS := $(VENV)/tools/bin/check-jsonschema
$(TOOLS):
	$(PY) -m venv $(VENV)/tools
	$(VENV)/tools/bin/python -m pip install -q check-jsonschema==0.39.0

# pip-audit reads advisories over the network, so only `make audit-refresh` and `make audit-online` use it, from a
# venv of its own: the audited environment stays the project's, and `make test` never installs it
AUDIT := $(VENV)/audit/bin/pip-audit
$(AUDIT):
	$(PY) -m venv $(VENV)/audit
	$(VENV)/audit/bin/python -m pip install -q pip-audit==2.10.1

install: $(STAMP)

chat: $(STAMP)
	$(BIN)/shopbot chat

# the static checks first (about a minute: ruff, the dependency rules, mypy, bandit, known vulnerabilities of the
# installed dependencies against tests/data/vulnerabilities.json, offline): they fail before the tests run
test: lint $(TOOLS)
	$(BIN)/python -m pytest

test-all: $(STAMP) $(TOOLS)
	$(BIN)/python -m pytest -m ''

lint: $(STAMP)
	$(BIN)/ruff check bot retrieval model tests docs
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy bot retrieval model
	$(BIN)/bandit -r bot retrieval model -q --ini .bandit
	$(BIN)/python -m tests.security.vulnerabilities

# (needs the network) the advisory snapshot that `make test` checks offline, rewritten from what is installed now
audit-refresh: $(STAMP) $(AUDIT)
	$(BIN)/python -m tests.security.refresh_vulnerabilities --pip-audit $(AUDIT)

# (needs the network) pip-audit live on what is installed; SERVICE=osv asks OSV instead of PyPI
SERVICE ?= pypi
audit-online: $(STAMP) $(AUDIT)
	$(BIN)/python -m tests.security.refresh_vulnerabilities --pip-audit $(AUDIT) --online --service $(SERVICE)

bench: $(STAMP)
	$(BIN)/python tests/benchmarks/bench_search.py

# docs/configuration.md is generated from bot/settings.py (tests/test_docs.py fails when it is stale)
docs: $(STAMP)
	$(BIN)/python docs/gen_configuration.py

eval-search: $(STAMP)
	$(BIN)/shopbot eval search --judgments ../shared/eval/search/crowdflower_dev.csv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
