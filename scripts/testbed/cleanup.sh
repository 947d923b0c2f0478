#!/usr/bin/env bash
# Remove what crashed or interrupted test runs left behind, by the test bed's naming rules:
#   docker containers and networks labelled org.portnet.test.run (any run, or only RUN_ID if given)
#   network namespaces pntb-*, host links tbo*, DOCKER-USER rules commented "portnet-testbed"
# Usage: scripts/testbed/cleanup.sh [RUN_ID]
# Networks of a remote driver can only be removed while their plugin answers; those that fail are reported.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/log.sh"
require_root "cleanup"
label=org.portnet.test.run
[[ $# -ge 1 ]] && label="$label=$1"

if command -v docker >/dev/null 2>&1 && timeout 15 docker version >/dev/null 2>&1; then
  mapfile -t cs < <(docker ps -aq --filter "label=$label")
  if ((${#cs[@]})); then
    log "cleanup: removing ${#cs[@]} container(s)"
    docker rm -f "${cs[@]}" >/dev/null || log "cleanup: some containers could not be removed"
  fi
  mapfile -t ns < <(docker network ls -q --filter "label=$label")
  for n in "${ns[@]}"; do
    docker network rm "$n" >/dev/null 2>&1 && log "cleanup: removed network $n" \
      || log "cleanup: could not remove network $n (is its plugin running?)"
  done
fi

while read -r netns _; do
  [[ "$netns" == pntb-* ]] || continue
  ip netns del "$netns" && log "cleanup: removed netns $netns"
done < <(ip netns list 2>/dev/null)

while read -r link; do
  ip link del "$link" 2>/dev/null && log "cleanup: removed link $link"
done < <(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^tbo' || true)

if iptables -S DOCKER-USER >/dev/null 2>&1; then
  while read -r rule; do
    # rule is "-A DOCKER-USER ..."; delete it by its exact specification
    read -ra spec <<<"${rule#-A DOCKER-USER }"
    # the comment value is quoted in -S output; strip the quotes for the argv form
    spec=("${spec[@]//\"/}")
    iptables -D DOCKER-USER "${spec[@]}" && log "cleanup: removed DOCKER-USER rule: ${rule#-A DOCKER-USER }"
  done < <(iptables -S DOCKER-USER | grep -- '--comment "\?portnet-testbed' || true)
fi
log "cleanup: done"
