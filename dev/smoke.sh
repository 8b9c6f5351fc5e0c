#!/usr/bin/env bash
# A short black-box check of a deployed stage over HTTP (make smoke):
# register a namespace, provision a pack and re-sync it, read it back, pay a
# work period, replay that payment with its Idempotency-Key. Ids carry the
# run's timestamp and a random part, so runs never collide and nothing needs
# cleaning up.
#   API_URL=https://… TOKEN=… dev/smoke.sh     (TOKEN: scopes admin and payments)
set -euo pipefail
: "${API_URL:?API_URL is the stage's base URL (the stack's ApiUrl output)}"
: "${TOKEN:?TOKEN is a bearer token with scopes admin and payments}"
API="${API_URL%/}"
run="$(date +%s)$(printf '%05d' $((RANDOM % 100000)))"
ns=$((run % 9000000000000000 + 1000000000000000))
fail() { echo "smoke: FAILED: $*" >&2; exit 1; }
# call METHOD PATH [BODY] [KEY] → sets STATUS, BODY, HEADERS
call() {
  local hdrs; hdrs=$(mktemp)
  local args=(-sS -o /dev/stdout -D "$hdrs" -w '\n%{http_code}' -X "$1" "$API$2" -H "Authorization: Bearer $TOKEN")
  [[ $# -ge 3 && -n "$3" ]] && args+=(-H 'Content-Type: application/json' -d "$3")
  [[ $# -ge 4 ]] && args+=(-H "Idempotency-Key: $4")
  local out; out=$(curl "${args[@]}") || fail "$1 $2: no answer"
  STATUS=${out##*$'\n'}; BODY=${out%$'\n'*}; HEADERS=$(cat "$hdrs"); rm -f "$hdrs"
}
expect() { [[ "$STATUS" == "$1" ]] || fail "$2: got $STATUS $BODY"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {'d': d}))" "$1" <<<"$BODY"; }

call PUT "/namespaces/$ns" "{\"name\": \"smoke-$run\", \"parent_id\": null, \"owner_id\": 1}"
expect 200 "register namespace $ns"
pack="{\"packs\": [{\"number_of_minutes\": 100, \"expires_at\": \"2099-01-01\", \"purchase_xid\": \"smoke-$run\"}]}"
call POST "/namespaces/$ns/minutes" "$pack"
expect 201 "provision a pack"
first="$BODY"
call POST "/namespaces/$ns/minutes" "$pack"
expect 201 "re-sync the pack"
[[ "$BODY" == "$first" ]] || fail "re-sync answered differently: $BODY vs $first"
call GET "/namespaces/$ns/minutes"
expect 200 "read the packs back"
[[ "$(json 'd["purchased_minutes"]')" == "100" ]] || fail "expected 100 purchased minutes: $BODY"
[[ "$(json 'len(d["packs"])')" == "1" ]] || fail "expected one pack: $BODY"

wp="smoke-$run"
call PUT "/work-periods/$wp" '{"resourceBookingId": "smoke", "userHandle": "smoke", "startDate": "2026-01-05", "endDate": "2026-01-11", "daysWorked": 5, "memberRate": 250.00, "customerRate": 300.00, "billingAccountId": 1}'
expect 200 "register a work period"
call POST /work-period-payments "{\"workPeriodId\": \"$wp\", \"days\": 2}" "smoke-$run"
expect 201 "pay two days"
paid="$BODY"
[[ "$paid" == *'"amount":100.00'* ]] || fail "expected amount 100.00: $paid"
call POST /work-period-payments "{\"workPeriodId\": \"$wp\", \"days\": 2}" "smoke-$run"
expect 201 "replay the payment"
[[ "$BODY" == "$paid" ]] || fail "the replay answered differently: $BODY"
grep -qi '^idempotent-replayed: true' <<<"$HEADERS" || fail "the replay lacks Idempotent-Replayed: true"
call GET "/work-periods/$wp"
expect 200 "read the work period"
[[ "$(json 'd["daysPaid"]')" == "2" ]] || fail "expected 2 days paid (the replay wrote nothing): $BODY"
echo "smoke: OK against $API (namespace $ns, work period $wp)"
