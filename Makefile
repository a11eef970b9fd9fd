# Rapport: `make run` starts the whole local stack, `make test` runs the tests against the
# real Kafka and Redis, `make stop` stops everything. Needs python3.11, Java 17+, Maven and
# redis-server (.ci/run installs the last three on a bare Debian machine).

PYTHON ?= python3.11
VENV := .venv
RAPPORT := $(VENV)/bin/rapport
# Reinstall only when the project's dependencies change; `make install` forces it.
INSTALLED := $(VENV)/.installed

.PHONY: run test stop bench install

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(INSTALLED)

run: $(INSTALLED)
	$(RAPPORT) up

test: $(INSTALLED)
	$(RAPPORT) up --infra-only
	$(VENV)/bin/pytest $(PYTEST_ARGS)

stop:
	$(RAPPORT) down

# A benchmark is a bench/*.py with a __main__ block (the others are its support code);
# each runs as a module from the repository root, against the real Kafka and Redis.
bench: $(INSTALLED)
	$(RAPPORT) up --infra-only
	@set -e; found=0; \
	for script in bench/*.py; do \
		grep -q '__name__ == "__main__"' "$$script" 2>/dev/null || continue; \
		found=1; module=$$(basename "$$script" .py); \
		echo "== bench.$$module"; $(VENV)/bin/python -m "bench.$$module" $(BENCH_ARGS); \
	done; \
	[ $$found = 1 ] || echo "no benchmarks in bench/"
