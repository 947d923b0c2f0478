# shellcheck shell=bash
# The test bed: what every privileged test (integration, e2e) relies on.
#
#   ensure_test_routes    unreachable routes for the test ranges, so that a packet for an address no test
#                         namespace owns never leaves the machine:
#                           unreachable 198.18.0.0/15   metric 4000   (pools)
#                           unreachable 198.51.100.0/24 metric 4000   (outside hosts; each gets a /30 on top)
#                           unreachable 2001:db8::/32   metric 4000   (IPv6 pools and outside hosts)
#   ensure_test_image     docker image portnet-test/busybox:latest from Debian's static busybox
#                         (label org.portnet.test.busybox-key = sha256 of busybox + recipe version);
#                         skipped when an image with the same key exists.
#   ensure_testbed        apt packages, dockerd, image, routes (what scripts/testbed/prepare.sh does)
#
# Test-bed naming (scripts/testbed/cleanup.sh removes leftovers by these):
#   network namespaces  pntb-*           host links  tbo*  (never pn*: that is portnet's endpoint space)
#   docker objects      label org.portnet.test.run=<run id>, names pnt-<run id>-*

if [[ -z "${_PORTNET_TESTBED_SH:-}" ]]; then
  _PORTNET_TESTBED_SH=1
  # shellcheck source=./docker.sh
  source "$(dirname "${BASH_SOURCE[0]}")/docker.sh"

  PORTNET_TEST_IMAGE=portnet-test/busybox:latest
  # Bump when the rootfs recipe below changes, so existing images get rebuilt.
  _PORTNET_IMAGE_RECIPE=2
  PORTNET_TEST_APT_PACKAGES=(nftables iproute2 iptables busybox-static socat nmap conntrack procps util-linux python3)

  ensure_test_routes() {
    require_root "installing the test ranges' unreachable routes"
    local r
    for r in 198.18.0.0/15 198.51.100.0/24; do
      if [[ -n "$(ip -4 route show exact "$r" type unreachable)" ]]; then
        log "routes: unreachable $r present"
      else
        ip -4 route add unreachable "$r" metric 4000 || die "could not add unreachable route $r"
        log "routes: added unreachable $r metric 4000"
      fi
    done
    r=2001:db8::/32
    if [[ -n "$(ip -6 route show exact "$r" type unreachable)" ]]; then
      log "routes: unreachable $r present"
    else
      ip -6 route add unreachable "$r" metric 4000 || die "could not add unreachable route $r"
      log "routes: added unreachable $r metric 4000"
    fi
  }

  ensure_test_image() {
    ensure_apt_packages busybox-static
    local bb=/bin/busybox key have
    key="$(sha256sum "$bb" | cut -c1-64)-r$_PORTNET_IMAGE_RECIPE"
    have=$(docker image inspect -f '{{index .Config.Labels "org.portnet.test.busybox-key"}}' \
      "$PORTNET_TEST_IMAGE" 2>/dev/null || true)
    if [[ "$have" == "$key" ]]; then
      log "image: $PORTNET_TEST_IMAGE up to date (busybox ${key:0:12})"
      return 0
    fi
    log "image: building $PORTNET_TEST_IMAGE from $bb (busybox ${key:0:12})"
    local root rc=0
    root=$(mktemp -d /tmp/portnet-rootfs.XXXXXX)
    _build_test_image "$bb" "$key" "$root" || rc=$?
    rm -rf "$root"
    ((rc == 0)) || die "building $PORTNET_TEST_IMAGE failed"
  }

  _build_test_image() {
    local bb=$1 key=$2 root=$3 applet n=0
    mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root,www,usr,var/run} || return 1
    ln -s bin "$root/sbin"
    ln -s ../bin "$root/usr/bin"
    ln -s ../bin "$root/usr/sbin"
    chmod 1777 "$root/tmp"
    cp "$bb" "$root/bin/busybox" || return 1
    for applet in $("$bb" --list); do
      [[ "$applet" == busybox ]] && continue
      ln -s busybox "$root/bin/$applet"
      n=$((n + 1))
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'portnet-test\n' >"$root/www/index.html"
    tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . |
      docker import \
        --change "LABEL org.portnet.test.busybox-key=$key" \
        --change 'ENV PATH=/bin' \
        --change 'CMD ["/bin/sh"]' \
        --message "portnet test image: Debian busybox-static with $n applet links" \
        - "$PORTNET_TEST_IMAGE" >/dev/null || return 1
    log "image: built $PORTNET_TEST_IMAGE ($n applets; /www/index.html says portnet-test)"
  }

  ensure_testbed() {
    require_root "the test bed"
    ensure_apt_packages "${PORTNET_TEST_APT_PACKAGES[@]}"
    ensure_dockerd
    ensure_test_image
    ensure_test_routes
  }
fi
