#!/usr/bin/env bash
# `npm start`: install what is missing (packages, node modules, the build), then run the plugin in
# the foreground. On an installed and built tree every check is a file-time comparison, so the
# plugin is up in about a second. Extra arguments go to `portnet serve`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh"

require_root "portnet manages links, routes and nftables rules"
# nftables for the rules, iproute2 for veths and routes, iptables for Docker's DOCKER-USER chain,
# conntrack to drop stale UDP entries when a UDP exposure changes (without it portnet only warns).
ensure_apt_packages nftables iproute2 iptables conntrack
ensure_node_modules
ensure_build
log "starting portnet serve $*"
cd "$PORTNET_ROOT"
exec node dist/cli.js serve "$@"
