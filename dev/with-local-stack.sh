#!/usr/bin/env bash
# Runs a command against a fresh local stack: allotment-local (DynamoDB Local
# included) on free ports with its own table and JWT secret, API_URL and
# TOKEN (admin payments payments:process), ALICE and CAROL exported, stopped afterwards;
# EVENTS_FILE names the JSONL file its domain events go to.
#   dev/with-local-stack.sh COMMAND [ARGS…]
set -euo pipefail
cd "$(dirname "$0")/.."
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port); ddb_port=$(free_port); log=$(mktemp); events=$(mktemp)
cargo build --quiet -p allotment-dev --bin allotment-local
PORT=$port DYNAMODB_PORT=$ddb_port TABLE_NAME="local$RANDOM" ALLOTMENT_JWT_SECRET="local-$RANDOM$RANDOM" EVENTS_FILE="$events" \
  target/debug/allotment-local >"$log" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log" "$events"' EXIT
for _ in $(seq 1 300); do grep -q '^export TOKEN=' "$log" && break; sleep 0.2; done
TOKEN=$(sed -n 's/^export TOKEN=//p' "$log")
[[ -n "$TOKEN" ]] || { echo "allotment-local did not start"; cat "$log"; exit 1; }
ALICE=$(sed -n 's/^export ALICE=//p' "$log"); CAROL=$(sed -n 's/^export CAROL=//p' "$log")
export API_URL="http://127.0.0.1:$port" TOKEN ALICE CAROL EVENTS_FILE="$events"
"$@"
