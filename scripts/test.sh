#!/usr/bin/env bash
# What `npm test` runs. Works from a fresh clone as root with no stdin (CI=true):
#   1. prerequisites: apt packages, node_modules, build, dockerd, test image, unreachable routes,
#      and removal of test-bed leftovers from interrupted runs
#   2. vitest phases in order: unit, integration, e2e
# Every phase runs even if an earlier one failed (one CI run reports everything); the exit status is
# non-zero if any phase failed. A failed build fails the "build" phase and skips e2e (it needs dist/).
#
# Usage: scripts/test.sh [VITEST_ARGS...]        extra args go to every vitest phase
#   PORTNET_TEST_PHASES="unit integration"       run only these phases (default: unit integration e2e)
#   PORTNET_TEST_FAIL_FAST=1                     stop at the first failed phase
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/testbed.sh"
cd "$PORTNET_ROOT" || exit 1

phases=${PORTNET_TEST_PHASES:-unit integration e2e}
results=()
failed=0

record() { # name status seconds
  results+=("$(printf '%-12s %-7s %6ss' "$1" "$2" "$3")")
  [[ "$2" == FAIL ]] && failed=1
  if [[ "$2" == FAIL && -n "${PORTNET_TEST_FAIL_FAST:-}" ]]; then summary; fi
}

summary() {
  heading "summary"
  local r
  for r in "${results[@]}"; do log "$r"; done
  if ((failed)); then log "FAILED (total $(elapsed) s)"; exit 1; fi
  log "all passed (total $(elapsed) s)"
  exit 0
}

t() { date +%s; }

heading "prerequisites"
require_root "scripts/test.sh"
ensure_apt_packages "${PORTNET_TEST_APT_PACKAGES[@]}"
ensure_node_modules
ensure_dockerd
ensure_test_image
ensure_test_routes
# Under the host-wide lock: it removes test-bed namespaces and links a running suite may be using.
flock "${PORTNET_TEST_LOCK:-/tmp/portnet-e2e.lock}" bash "$PORTNET_ROOT/scripts/testbed/cleanup.sh"

heading "build"
s=$(t)
build_ok=1
if (ensure_build); then record build ok $(($(t) - s)); else build_ok=0; record build FAIL $(($(t) - s)); fi

vitest=("$PORTNET_ROOT/node_modules/.bin/vitest" run --passWithNoTests)
for phase in $phases; do
  heading "vitest --project $phase"
  s=$(t)
  if [[ "$phase" == e2e && $build_ok == 0 ]]; then
    log "e2e: skipped because the build failed"
    record "$phase" FAIL 0
    continue
  fi
  # Namespaces, the nft table and the e2e socket are host-wide: one integration or e2e run at a time.
  lock=()
  [[ "$phase" != unit ]] && lock=(flock "${PORTNET_TEST_LOCK:-/tmp/portnet-e2e.lock}")
  if "${lock[@]}" "${vitest[@]}" --project "$phase" "$@" </dev/null; then
    record "$phase" ok $(($(t) - s))
  else
    record "$phase" FAIL $(($(t) - s))
  fi
done
summary
