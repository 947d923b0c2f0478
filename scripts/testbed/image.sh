#!/usr/bin/env bash
# Build the test image portnet-test/busybox:latest (skipped when up to date). See scripts/lib/testbed.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/testbed.sh"
ensure_dockerd
ensure_test_image
