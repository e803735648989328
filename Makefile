# Quick start: `make dev` runs the function locally; `make test` runs every test.
SHELL := /bin/bash
EVENT ?= events/user.created.json

.PHONY: dev test test-unit send get scan tools ddb-start ddb-stop lint release bench chaos fuzz fuzz-seed

dev: ## Run the function locally under cargo lambda watch, with DynamoDB Local and the table
	scripts/dev.sh

test: ## The whole test suite (starts DynamoDB Local if needed)
	scripts/test.sh

test-unit: ## The pure tests only (verifier, decoder, planner, ...): no DynamoDB Local, Java or Node
	cargo test --lib

send: ## Sign EVENT (default events/user.created.json) and POST it to the local function
	. scripts/dev.env && cargo run --quiet --bin clerk-webhooks-send -- $(EVENT)

get: ## Read the local table as the reader does, e.g. ARGS="user user_…" or ARGS="members org_…"
	. scripts/dev.env && cargo run --quiet --bin clerk-webhooks-get -- $(ARGS)

scan: ## Print what the local table holds
	. scripts/dev.env && cargo run --quiet --example scan

tools: ## Install cargo-lambda and Svix's npm library into git-ignored folders
	scripts/tools.sh

ddb-start:
	scripts/dynamodb-local.sh start

ddb-stop:
	scripts/dynamodb-local.sh stop

lint: tools ## What CI checks besides the tests
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	.tools/venv/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 .tools/venv/bin/sam validate --lint --region us-east-1

bench: ## Every benchmark in BENCHMARKS.md (about 10 minutes)
	perf/run.sh

release: tools ## The Lambda's release build (arm64 where the target is installable), zipped
	scripts/release.sh

chaos: ## The large chaos run recorded in RELIABILITY.md (CHAOS_EVENTS, CHAOS_FAULT_RATE, CHAOS_SEED)
	CHAOS_EVENTS=$${CHAOS_EVENTS:-10000} CHAOS_FAULT_RATE=$${CHAOS_FAULT_RATE:-0.05} \
	  scripts/dynamodb-local.sh run cargo test --test it chaos::chaos_delivery

# cargo-fuzz targets (fuzz/, nightly; see RELIABILITY.md). FUZZ_SECS is per target.
FUZZ_SECS ?= 30
FUZZ_TARGETS ?= verify decode plan prepare
# A single allocation over 64 MiB or a process over 1 GiB is a failure, reported like a crash:
# inputs are at most 16 KiB, so either would mean allocation that grows without bound. (RSS
# includes AddressSanitizer's quarantine, up to 256 MiB by default; hence not lower.)
FUZZ_FLAGS ?= -max_len=16384 -malloc_limit_mb=64 -rss_limit_mb=1024 -dict=fuzz/json.dict

fuzz-seed: ## Seed fuzz/corpus/<target>/ from events/
	fuzz/seed.sh

fuzz: fuzz-seed ## Run every fuzz target for FUZZ_SECS seconds (default 30), one after another
	for target in $(FUZZ_TARGETS); do \
	  cargo +nightly fuzz run $$target -- -max_total_time=$(FUZZ_SECS) $(FUZZ_FLAGS) || exit 1; \
	done
