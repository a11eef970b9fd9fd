# Rapport: `make run` starts the whole local stack, `make test` runs the tests against the
# real Kafka and Redis, `make stop` stops everything. Needs python3.11, Java 17+, Maven,
# redis-server and nginx (.ci/run installs the last four on a bare Debian machine).

PYTHON ?= python3.11
VENV := .venv
RAPPORT := $(VENV)/bin/rapport
# Reinstall only when the project's dependencies change; `make install` forces it.
INSTALLED := $(VENV)/.installed

.PHONY: run test test-cluster stop bench install system-deps

# redis-server and nginx (the gateway) from Debian when missing (as root; otherwise say what to install).
# Debian puts nginx in /usr/sbin, off a user's PATH.
system-deps:
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
		else echo "redis-server is missing: sudo apt-get install redis-server" >&2; exit 1; fi; }
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; \
		else echo "nginx is missing: sudo apt-get install nginx" >&2; exit 1; fi; }
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
		echo "Java 17+ and Maven are needed to fetch and run Kafka: apt-get install openjdk-17-jre-headless maven" >&2; exit 1; }

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(INSTALLED)

run: system-deps $(INSTALLED)
	$(RAPPORT) up

# The cluster stack's share (below) runs beside the default stack's run: each session has its
# own Kafka, Redis and namespace, and both mostly wait on them. Its output goes to
# .run/cluster-share.log, printed after the default run; `make test` fails when either does.
test: system-deps $(INSTALLED)
	$(RAPPORT) up --infra-only
	@mkdir -p .run; rm -f .run/cluster-share.status
	@( $(MAKE) --no-print-directory test-cluster > .run/cluster-share.log 2>&1; echo $$? > .run/cluster-share.status ) & \
	status=0; $(VENV)/bin/pytest --durations=25 $(addprefix --deselect=,$(OWN_STACK_TESTS)) $(PYTEST_ARGS) || status=$$?; \
	wait; echo "== the cluster stack's share (.run/cluster-share.log)"; cat .run/cluster-share.log; \
	[ $$status = 0 ] && [ "$$(cat .run/cluster-share.status)" = 0 ]

# The cluster stack's share: the modules of the two-member transitions the slot rule reshaped,
# on `rapport up --cluster --infra-only` (three brokers, a six-node Redis Cluster), then that
# stack is stopped and the tests that start brokers and nodes of their own run.
# CLUSTER_TESTS="tests/integration tests/e2e" runs everything on the cluster stack (about 25
# minutes here).
CLUSTER_TESTS ?= tests/integration/test_follows_api.py tests/integration/test_connections_invitations.py \
	tests/integration/test_notifications_inbox.py tests/integration/test_feed_timelines.py tests/integration/test_write_limits.py
# Tests that start brokers and nodes of their own to kill them: the cluster stack's own tests,
# the failover test and the Kafka outage test (a private single broker).
OWN_STACK_TESTS := tests/integration/test_cluster_stack.py tests/integration/test_cluster_failover.py \
	tests/integration/test_nothing_lost.py::test_a_follow_made_while_kafka_is_down_is_notified_once_kafka_is_back

test-cluster: system-deps $(INSTALLED)
	$(RAPPORT) up --infra-only
	$(RAPPORT) up --cluster --infra-only
	@status=0; RAPPORT_TEST_STACK=cluster $(VENV)/bin/pytest $(CLUSTER_TESTS) $(PYTEST_ARGS) || status=$$?; \
	$(RAPPORT) down --cluster; \
	$(VENV)/bin/pytest $(OWN_STACK_TESTS) $(PYTEST_ARGS) || status=$$?; \
	exit $$status

stop:
	$(RAPPORT) down

# A benchmark is a bench/*.py with a __main__ block (the others are its support code);
# each runs as a module from the repository root, against the real Kafka and Redis.
bench: system-deps $(INSTALLED)
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } || { echo "wrk is needed for the HTTP benchmarks: apt-get install wrk" >&2; exit 1; }
	$(RAPPORT) up --infra-only
	@set -e; found=0; \
	for script in bench/*.py; do \
		grep -q '__name__ == "__main__"' "$$script" 2>/dev/null || continue; \
		found=1; module=$$(basename "$$script" .py); \
		echo "== bench.$$module"; $(VENV)/bin/python -m "bench.$$module" $(BENCH_ARGS); \
	done; \
	[ $$found = 1 ] || echo "no benchmarks in bench/"
