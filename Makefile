# The two commands a newcomer needs:
#   make run   the whole API locally (DynamoDB Local included) on $PORT (3000)
#   make test  every test; installs what it needs (npm, pip) itself
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test lint build-functions bench bench-quick sam-build contract fuzz

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: node_modules/.installed
	cargo run --quiet -p allotment-dev --bin allotment-local

lint: $(VENV)/.installed
	cfn-lint template.yaml
	sam validate --lint

build-functions:
	cargo build -p allotment-functions -p allotment-bench -p allotment-cli

# The benchmark at tiny sizes in a debug build, so it cannot rot (no timing is judged).
bench-quick: node_modules/.installed build-functions
	target/debug/allotment-bench --quick --bin-dir target/debug

# The OpenAPI contract: Schemathesis generates requests from docs/openapi.json
# against a fresh local stack (dev/contract/run.sh); ~1,700 cases, under a minute.
contract: node_modules/.installed $(VENV)/.installed
	dev/contract/run.sh 20

# The same, longer: 200 examples per operation and phase (several minutes).
fuzz: node_modules/.installed $(VENV)/.installed
	dev/contract/run.sh 200

test: node_modules/.installed $(VENV)/.installed lint bench-quick contract
	cargo test --workspace

# The real benchmark: release build, report in target/bench/report.md (+ throughput.png).
bench: node_modules/.installed
	cargo build --release -p allotment-functions -p allotment-bench -p allotment-cli
	target/release/allotment-bench --bin-dir target/release

# Not part of `make test`: cross-compiles every function for arm64 (needs the
# aarch64-unknown-linux-gnu Rust target).
sam-build: $(VENV)/.installed
	sam build --beta-features
