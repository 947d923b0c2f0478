#!/usr/bin/env bash
# Everything the privileged tests need, idempotent and quick when already done:
# apt packages, a running dockerd, the test image, the unreachable routes for the test ranges.
# e2e tests run this themselves (test/e2e/support/bed.ts), so `npx vitest run --project e2e` works alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testbed.sh"
ensure_testbed
