# Orbit developer and CI targets. `.ci/run` prepares a fresh machine and then runs `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.orbit-installed
EXTRAS  := dev,gateway,tasks
PY      ?= $(shell command -v python3.11 || command -v python3)
TEST_WORKERS ?= 4  # pytest-xdist workers for `make test`; each starts its own private node

.PHONY: venv test test-fast lint broker-up broker-down demo bench trust

## venv: create .venv (python3.11, else python3) and install the project; idempotent
venv: $(STAMP)

$(PYTHON):
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

## test: the whole suite: unit, in-memory transport (tests/local), the transport conformance
## suite on both transports, and integration against private RabbitMQ nodes the suite starts
test: | $(PYTHON)
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

## test-fast: the inner loop, no broker node: unit tests, tests/local and the memory half of
## the conformance suite (under a minute on 2 cores)
test-fast: | $(PYTHON)
	$(PYTHON) -m pytest -q -p no:cacheprovider -n 3 tests/unit tests/local tests/contract -k "not rabbitmq"

## lint: ruff (lint + format check), mypy --strict (packages listed in pyproject.toml, then
## the example scripts) and vulture (dead code; false positives are listed in vulture_whitelist.py)
lint: | $(PYTHON)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict examples/*.py
	$(VENV)/bin/vulture orbit_protocol orbit_amqp orbit_client orbit_broker orbit_endpoint \
	    orbit_plugins orbit_gateway orbit_cli vulture_whitelist.py --min-confidence 60

## broker-up / broker-down: the private dev RabbitMQ node (127.0.0.1:35672, management :35673)
broker-up: | $(PYTHON)
	$(VENV)/bin/orbit broker up

broker-down: | $(PYTHON)
	$(VENV)/bin/orbit broker down

## demo: private broker + endpoint demo in a temp dir: call, sysinfo, events; always cleans up
demo: venv
	scripts/demo.sh

## bench: RPC benchmark (orbit vs raw aio-pika on a private RabbitMQ node, ~2 min); JSON in bench/results/
.PHONY: bench
BENCH_ARGS ?=
bench: | $(PYTHON)
	$(PYTHON) bench/rpc.py --json-out bench/results/rpc-latest.json $(BENCH_ARGS)

## bench-ab: RPC benchmark of REV (default: the commit before the redesign) against the working tree, interleaved pairs (~9 min for 5 pairs)
.PHONY: bench-ab
REV ?= 6eacdb6
bench-ab: | $(PYTHON)
	$(PYTHON) bench/ab.py $(REV) --json-out bench/results/ab-latest.json $(BENCH_ARGS)

## bench-sse: SSE gateway vs raw aio-pika consumer, 1 and 100 receivers (~3 min); JSON in bench/results/
.PHONY: bench-sse
bench-sse: | $(PYTHON)
	$(PYTHON) bench/sse.py --json-out bench/results/sse-latest.json $(BENCH_ARGS)

## bench-staging: 200 MiB put/get through Orbit vs the raw-AMQP 1 MiB echo ceiling (~3 min); JSON in bench/results/
.PHONY: bench-staging
bench-staging: | $(PYTHON)
	$(PYTHON) bench/staging.py --json-out bench/results/staging-latest.json $(BENCH_ARGS)

## bench-tasks: no-op function tasks/s, OrbitExecutor.map vs Celery (prefork, rpc backend) on one private node (~2 min); installs orbit[bench]
.PHONY: bench-tasks
bench-tasks: | $(PYTHON)
	$(PYTHON) -m pip install -q -e '.[bench]'
	$(PYTHON) bench/tasks.py --json-out bench/results/tasks-latest.json $(BENCH_ARGS)

## trust: the security and reliability suite at full size (isolation matrix, lint, TLS, limits with
## 1,000 connection attempts, 10,000 fuzzed messages, 10,000 requests with 5 endpoint SIGKILLs,
## 3,000 requests with 3 broker kill -9s, secrets grep, revocation,
## frozen endpoint at heartbeat 10, broker kill -9, poison, sessions, consumer_timeout, 30 s memory alarm,
## 1,000 concurrent clients, the gateway's HTTP API fuzzed with 200 examples per operation); prints the figures
trust: | $(PYTHON)
	ORBIT_FUZZ_N=10000 ORBIT_LEDGER_N=10000 ORBIT_LEDGER_KILLS=5 ORBIT_LIMITS_N=1000 ORBIT_STANDBY_HB=10 \
	    ORBIT_BROKER_LEDGER_N=3000 ORBIT_BROKER_LEDGER_KILLS=3 ORBIT_OPENAPI_FUZZ_N=200 \
	    ORBIT_ALARM_S=30 ORBIT_CLIENTS_N=1000 $(PYTHON) -m pytest -q -s -p no:cacheprovider \
	    tests/integration/test_isolation.py tests/integration/test_lint.py tests/integration/test_tls.py \
	    tests/integration/test_limits.py tests/integration/test_fuzz.py tests/integration/test_ledger.py \
	    tests/integration/test_standby.py tests/integration/test_reliability.py \
	    tests/integration/test_session.py tests/integration/test_consumer_timeout.py \
	    tests/integration/test_alarm.py tests/integration/test_many_clients.py \
	    tests/integration/test_secrets.py tests/integration/test_broker_infra.py \
	    tests/integration/test_gateway_openapi_fuzz.py

## soak: long fault tests (~17 min): a 5-minute operation with the broker's consumer_timeout at 60 s;
## a session client away for 10 minutes collects all its replies
.PHONY: soak
soak: | $(PYTHON)
	ORBIT_CT_TIMEOUT_MS=60000 ORBIT_CT_OPERATION_S=300 ORBIT_SESSION_AWAY_S=600 \
	    $(PYTHON) -m pytest -q -s -p no:cacheprovider \
	    tests/integration/test_consumer_timeout.py tests/integration/test_session.py
