# Switchboard: the two commands are `make run` and `make test`.
CARGO ?= cargo
SKIP_LOG := $(CURDIR)/target/skipped-tests.txt
# Tests wait on sockets and databases more than on the CPU.
TEST_THREADS ?= 4

.PHONY: run seed-demo test lint openapi api-check fuzz-api build release bench bench-smoke soak soak-smoke

## run: build and start the server on SQLite with the in-process bus (http://127.0.0.1:8080)
run:
	$(CARGO) run -p switchboard-api --bin switchboard -- serve

## seed-demo: a demo organization in the database of `make run` (CONVERSATIONS=1000000 for benchmarks)
CONVERSATIONS ?= 5000
seed-demo:
	$(CARGO) run -p switchboard-api --bin switchboard -- seed-demo --conversations $(CONVERSATIONS)

## test: the whole suite; tests of PostgreSQL, Redis or object storage (moto) are skipped, and listed, when that is unreachable
test:
	@mkdir -p target && rm -f $(SKIP_LOG)
	SWITCHBOARD_TEST_SKIP_LOG=$(SKIP_LOG) $(CARGO) test --workspace -- --test-threads=$(TEST_THREADS)
	@if [ -s $(SKIP_LOG) ]; then \
		echo "Skipped $$(wc -l < $(SKIP_LOG)) test(s) whose service was unreachable:"; \
		sort $(SKIP_LOG) | sed 's/^/  /'; \
		echo "PostgreSQL: SWITCHBOARD_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres); Redis: SWITCHBOARD_TEST_REDIS_URL; object storage: moto_server on the PATH (pip install 'moto[server]') or SWITCHBOARD_TEST_MOTO."; \
	fi

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## openapi: regenerate the committed OpenAPI and AsyncAPI documents from the code
openapi:
	$(CARGO) run -q -p switchboard-api --bin switchboard -- openapi > openapi/openapi.json
	$(CARGO) run -q -p switchboard-api --bin switchboard -- asyncapi > openapi/asyncapi.json

## api-check: OpenAPI validator and Redocly lint, a TypeScript client generated and compiled, AsyncAPI parsed
api-check:
	tools/api-check/check.sh

## fuzz-api: schemathesis (every check, bounded examples) against a live debug server; FUZZ_ARGS for more flags
fuzz-api: build
	tools/api-check/fuzz.sh target/debug/switchboard $(FUZZ_ARGS)

## bench: release build, then every benchmark figure against its baseline on SQLite and on PostgreSQL + Redis (BENCHMARKS.md, target/bench/results.json; BENCH_ARGS for more flags)
bench:
	$(CARGO) build --release -p switchboard-api -p switchboard-bench
	target/release/bench --server target/release/switchboard $(BENCH_ARGS)

## bench-smoke: the benchmark harness at tiny sizes on debug builds, in seconds (CI); fails on any error, not on a missed target
bench-smoke:
	$(CARGO) build -p switchboard-api -p switchboard-bench
	target/debug/bench --smoke --server target/debug/switchboard

## soak: release build, then 10 minutes of mixed traffic with reconnecting sockets on PostgreSQL + Redis (two instances); fails on any error or on memory or descriptors growing (target/bench/soak.json; SOAK_ARGS for more flags, e.g. --minutes 30 or --setup sqlite)
soak:
	$(CARGO) build --release -p switchboard-api -p switchboard-bench
	target/release/soak --server target/release/switchboard $(SOAK_ARGS)

## soak-smoke: the soak harness for 15 s on debug builds (CI); fails on any error
soak-smoke:
	$(CARGO) build -p switchboard-api -p switchboard-bench
	target/debug/soak --smoke --server target/debug/switchboard

build:
	$(CARGO) build -p switchboard-api

release:
	$(CARGO) build --release -p switchboard-api
