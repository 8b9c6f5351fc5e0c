#!/usr/bin/env bash
# The OpenAPI contract run: Schemathesis generates requests from
# docs/openapi.json (examples, coverage, fuzzing, then stateful sequences
# along the document's links) against the whole local stack, and fails on any
# 5xx, any response that violates the document (status, headers, body,
# content type), and any schema-violating request the API accepts.
#
#   dev/contract/run.sh [MAX_EXAMPLES]           against a fresh local stack
#   API_URL=https://… TOKEN=… dev/contract/run.sh  against a deployed stage
#
# Needs schemathesis (make installs it into .venv) and, for the local stack,
# the allotment-local binary (cargo builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
MAX_EXAMPLES="${1:-25}"
export SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$PWD/dev/contract${PYTHONPATH:+:$PYTHONPATH}"
if [[ -z "${API_URL:-}" ]]; then
  exec dev/with-local-stack.sh env CONTRACT_SEED_DATA=1 "$0" "$@"
fi
if [[ -n "${CONTRACT_SEED_DATA:-}" ]]; then
  # The document's examples name project p-sandbox and its cpu/ucloud wallet;
  # the run's own caller (dev-admin) is its PI, so gift operations get past 403.
  curl -sf -X PUT "$API_URL/projects/p-sandbox" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"title": "Contract run", "members": [{"username": "dev-admin", "role": "PI"}]}' >/dev/null
  curl -sf -X POST "$API_URL/projects/p-sandbox/wallets/deposit" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"category": "cpu", "provider": "ucloud", "amount": 1000000}' >/dev/null
fi

export TOKEN
schemathesis --config-file dev/contract/schemathesis.toml run docs/openapi.json --url "$API_URL" \
  --checks all --exclude-checks positive_data_acceptance,object_level_authorization \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$MAX_EXAMPLES" \
  --seed "${CONTRACT_SEED:-20261126}" \
  --suppress-health-check all \
  --report junit --report-dir target/contract
