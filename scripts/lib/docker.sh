# shellcheck shell=bash
# Docker Engine for the tests.
#
#   ensure_dockerd      make sure a Docker Engine answers `docker version`; otherwise install docker.io
#                       (containerd and runc come with it), start dockerd in the background with its log
#                       in $PORTNET_DOCKERD_LOG and wait up to 60 s. Prints the engine version.
#                       Engine defaults are kept (iptables on, so FORWARD policy becomes DROP).
#                       The started dockerd is left running (setsid, all fds to the log) for the next run.
#   docker_api_pin      export DOCKER_API_VERSION if the docker client on PATH is too new for the engine
#                       and does not negotiate down by itself.
#
# Findings on Debian 12 (engine docker.io 20.10.24, API 1.41): the Docker CLI 28.2 at /usr/local/bin/docker
# negotiates down by itself ("API version: 1.41 (downgraded from 1.50)"), so no pin is needed; the
# docker.io client /usr/bin/docker (20.10) matches the engine. Whichever `docker` is first on PATH is used.

if [[ -z "${_PORTNET_DOCKER_SH:-}" ]]; then
  _PORTNET_DOCKER_SH=1
  # shellcheck source=./deps.sh
  source "$(dirname "${BASH_SOURCE[0]}")/deps.sh"
  : "${PORTNET_DOCKERD_LOG:=/var/log/portnet-test-dockerd.log}"

  # `docker version` with a time limit; prints "<server version> (API <api>)" on success.
  _docker_server_version() {
    timeout 15 docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>&1 </dev/null
  }

  docker_api_pin() {
    local out
    out=$(_docker_server_version) && return 0
    # "client version 1.50 is too new. Maximum supported API version is 1.41"
    if [[ "$out" =~ [Mm]aximum\ supported\ API\ version\ is\ ([0-9]+\.[0-9]+) ]]; then
      export DOCKER_API_VERSION="${BASH_REMATCH[1]}"
      log "docker: client too new for the engine; DOCKER_API_VERSION=$DOCKER_API_VERSION"
    fi
  }

  _docker_answers() {
    command -v docker >/dev/null 2>&1 || return 1
    docker_api_pin
    _docker_server_version >/dev/null
  }

  # dockerd needs cgroups. If nothing is mounted at /sys/fs/cgroup (a bare VM without an init that does
  # it), mount the unified hierarchy there. Nothing is done when anything is already mounted.
  _ensure_cgroups() {
    if ! mountpoint -q /sys/fs/cgroup; then
      log "docker: /sys/fs/cgroup is not mounted; mounting cgroup2"
      mount -t cgroup2 cgroup2 /sys/fs/cgroup || die "could not mount cgroup2 on /sys/fs/cgroup"
    fi
  }

  _dockerd_pid() {
    local pid
    [[ -r /var/run/docker.pid ]] || return 1
    pid=$(cat /var/run/docker.pid 2>/dev/null) || return 1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
  }

  ensure_dockerd() {
    if _docker_answers; then
      log "docker: engine $(_docker_server_version) answers ($(command -v docker))"
      return 0
    fi
    ensure_apt_packages docker.io containerd runc iptables
    # The package's init script may have started it.
    if _docker_answers; then
      log "docker: engine $(_docker_server_version) answers ($(command -v docker))"
      return 0
    fi
    require_root "starting dockerd"
    _ensure_cgroups
    local pid
    if pid=$(_dockerd_pid); then
      log "docker: dockerd (pid $pid) is running but does not answer yet; waiting"
    else
      mkdir -p "$(dirname "$PORTNET_DOCKERD_LOG")"
      log "docker: starting dockerd (log: $PORTNET_DOCKERD_LOG)"
      printf '\n==== %s portnet test bed starts dockerd ====\n' "$(date -Is)" >>"$PORTNET_DOCKERD_LOG"
      # setsid + every fd on the log: the daemon must not hold the caller's terminal or CI pipe open.
      # Descriptors above 2 are closed too: a caller's `flock` lock fd inherited by dockerd (and so
      # containerd) would hold the test-bed lock for as long as the daemon lives.
      (
        for fd in /proc/$BASHPID/fd/*; do
          n=${fd##*/}
          [[ "$n" =~ ^[0-9]+$ ]] && ((n > 2)) && eval "exec $n>&-"
        done
        exec setsid dockerd </dev/null >>"$PORTNET_DOCKERD_LOG" 2>&1
      ) &
      pid=$!
    fi
    local i
    for ((i = 0; i < 120; i++)); do
      if _docker_answers; then
        log "docker: engine $(_docker_server_version) answers after ~$((i / 2)) s ($(command -v docker))"
        return 0
      fi
      if ! kill -0 "$pid" 2>/dev/null && ! _dockerd_pid >/dev/null; then
        tail -n 30 "$PORTNET_DOCKERD_LOG" >&2 || true
        die "dockerd exited during start-up (log above, full log: $PORTNET_DOCKERD_LOG)"
      fi
      ((i % 10 == 9)) && log "docker: still waiting for dockerd ($(((i + 1) / 2)) s)"
      sleep 0.5
    done
    tail -n 30 "$PORTNET_DOCKERD_LOG" >&2 || true
    die "dockerd did not answer within 60 s (log: $PORTNET_DOCKERD_LOG)"
  }
fi
