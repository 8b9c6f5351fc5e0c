#!/usr/bin/env bash
# The checker's power: each patch in dev/checker-reverts/ re-introduces one
# bug issue 29 found (its fix reverted); the checker scenario named on the
# patch's first line must then report a violation. Restores the tree after
# each. Rebuilds once per patch, so it is not part of make test:
#   make checker-power
set -euo pipefail
cd "$(dirname "$0")/.."
git diff --quiet -- shared || { echo "shared/ has uncommitted changes; commit or stash them first"; exit 2; }
status=0
applied=""
trap '[ -n "$applied" ] && git apply -R "$applied"' EXIT
for patch in dev/checker-reverts/*.patch; do
  scenario=$(sed -n '1s/^# scenario: //p' "$patch")
  git apply "$patch"; applied=$patch
  if out=$(cargo test -q -p allotment-tests --test api "explore::$scenario" -- --exact --nocapture 2>&1); then
    echo "MISSED  $(basename "$patch"): $scenario found nothing"; status=1
  elif grep -q VIOLATION <<<"$out"; then
    echo "found   $(basename "$patch"): $(grep -o 'VIOLATION after [0-9]* schedule(s)' <<<"$out" | head -1), $(grep -oE 'schedule\(s\)( \(every one within the bounds\))? in [0-9.]+[mµ]?s' <<<"$out" | head -1 | sed -E 's/.* in //') in the checker"
  else
    echo "ERROR   $(basename "$patch"):"; tail -20 <<<"$out"; status=1
  fi
  git apply -R "$patch"; applied=""
done
exit $status
