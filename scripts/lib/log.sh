# shellcheck shell=bash
# Progress lines with elapsed seconds. Sourced by the other scripts/lib/*.sh files.
#
#   log "message"        -> "[portnet    3.4s] message" on stderr
#   die "message"        -> log and exit 1
#   heading "title"      -> a blank line and "==== title ====" (for phases)
#
# The clock starts at the first script that sources this file and is shared with child
# scripts through PORTNET_T0 (nanoseconds since the epoch), so nested steps show one timeline.

if [[ -z "${_PORTNET_LOG_SH:-}" ]]; then
  _PORTNET_LOG_SH=1
  : "${PORTNET_T0:=$(date +%s%N)}"
  export PORTNET_T0

  elapsed() {
    local now
    now=$(date +%s%N)
    # seconds with one decimal, from integer nanoseconds (no bc/awk needed)
    local ds=$(( (now - PORTNET_T0) / 100000000 ))
    printf '%d.%d' $(( ds / 10 )) $(( ds % 10 ))
  }

  log() {
    printf '[portnet %6ss] %s\n' "$(elapsed)" "$*" >&2
  }

  heading() {
    printf '\n[portnet %6ss] ==== %s ====\n' "$(elapsed)" "$*" >&2
  }

  die() {
    log "ERROR: $*"
    exit 1
  }

  require_root() {
    if [[ "$(id -u)" != 0 ]]; then
      die "$1 needs root (network namespaces, nftables, dockerd). Run as root."
    fi
  }
fi
