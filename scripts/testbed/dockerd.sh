#!/usr/bin/env bash
# Make sure a Docker Engine answers; install docker.io and start dockerd if not. See scripts/lib/docker.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/docker.sh"
ensure_dockerd
