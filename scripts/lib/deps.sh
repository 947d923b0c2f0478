# shellcheck shell=bash
# Dependency helpers, sourced by scripts/test.sh, scripts/start.sh and scripts/testbed/*.sh.
#
#   ensure_apt_packages PKG...   install the packages dpkg does not report as installed
#                                (apt-get update runs once per shell, only if something is missing)
#   ensure_node                  fail clearly unless node >= 20 and npm are on PATH
#   ensure_node_modules          npm ci when node_modules is missing or older than package-lock.json
#                                (npm install when there is no lock file)
#   ensure_build                 npm run build when dist/ is missing or older than src/** or tsconfig.json
#
# All functions expect to run from anywhere; they use PORTNET_ROOT (the repo root, set below).

if [[ -z "${_PORTNET_DEPS_SH:-}" ]]; then
  _PORTNET_DEPS_SH=1
  # shellcheck source=./log.sh
  source "$(dirname "${BASH_SOURCE[0]}")/log.sh"
  : "${PORTNET_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
  export PORTNET_ROOT

  _pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
  }

  ensure_apt_packages() {
    local missing=() p
    for p in "$@"; do
      _pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
      log "apt: all present ($*)"
      return 0
    fi
    require_root "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z "${_PORTNET_APT_UPDATED:-}" ]]; then
      log "apt: apt-get update (missing: ${missing[*]})"
      apt-get -o DPkg::Lock::Timeout=300 update -qq </dev/null || die "apt-get update failed"
      _PORTNET_APT_UPDATED=1
    fi
    log "apt: installing ${missing[*]}"
    # Recommends are skipped on purpose: docker.io would pull git, needrestart, apparmor...
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" </dev/null \
      || die "apt-get install ${missing[*]} failed"
    log "apt: installed ${missing[*]}"
  }

  ensure_node() {
    command -v node >/dev/null 2>&1 || die "node is not on PATH (portnet needs Node.js >= 20; Debian 12's nodejs is 18)"
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH"
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    ((major >= 20)) || die "node $(node --version) is too old: portnet needs Node.js >= 20"
  }

  # better-sqlite3 falls back to node-gyp when no prebuilt binary can be downloaded (GitHub may be
  # unreachable): make sure a compiler, make and python3 are there before installing.
  _ensure_native_build_tools() {
    ensure_apt_packages python3 make g++
  }

  ensure_node_modules() {
    ensure_node
    local root=$PORTNET_ROOT marker=$PORTNET_ROOT/node_modules/.package-lock.json
    if [[ -f "$root/package-lock.json" ]]; then
      if [[ ! -f "$marker" || "$root/package-lock.json" -nt "$marker" ]]; then
        _ensure_native_build_tools
        log "npm: npm ci (node_modules missing or older than package-lock.json)"
        (cd "$root" && npm ci --no-audit --no-fund </dev/null) || die "npm ci failed"
        log "npm: done"
      else
        log "npm: node_modules up to date"
      fi
    else
      if [[ ! -d "$root/node_modules" || ! -f "$marker" || "$root/package.json" -nt "$marker" ]]; then
        _ensure_native_build_tools
        log "npm: npm install (no package-lock.json)"
        (cd "$root" && npm install --no-audit --no-fund </dev/null) || die "npm install failed"
        log "npm: done"
      else
        log "npm: node_modules up to date (no package-lock.json)"
      fi
    fi
  }

  # dist/.build-stamp is touched after every successful build; tsc itself leaves old outputs alone,
  # so the stamp (not dist/'s mtime) is what says "built from the sources as they are now".
  ensure_build() {
    local root=$PORTNET_ROOT stamp=$PORTNET_ROOT/dist/.build-stamp reason=""
    if [[ ! -f "$stamp" ]]; then
      reason="dist/ missing or never built by this script"
    else
      local newer
      newer=$(find "$root/src" "$root/tsconfig.json" "$root/package.json" "$root/package-lock.json" \
        -newer "$stamp" -print -quit 2>/dev/null || true)
      [[ -n "$newer" ]] && reason="${newer#"$root"/} is newer than dist/"
    fi
    if [[ -z "$reason" ]]; then
      log "build: dist/ up to date"
      return 0
    fi
    log "build: npm run build ($reason)"
    # Stamp the time the build started, so a source edited during the build still looks newer.
    local started
    started=$(mktemp)
    (cd "$root" && npm run --silent build </dev/null) || { rm -f "$started"; die "npm run build failed"; }
    mkdir -p "$root/dist" && mv -f "$started" "$stamp"
    log "build: done"
  }
fi
