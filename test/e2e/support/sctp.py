#!/usr/bin/env python3
"""SCTP INIT sender and listener for the e2e tests, on hosts without SCTP sockets.

The test kernel is built without CONFIG_IP_SCTP: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails
with EPROTONOSUPPORT, so no SCTP client or server can run. It does have SCTP conntrack and NAT,
which is what portnet's exposures use. An association starts with an INIT chunk, and the INIT is
what conntrack's first-packet NAT decision applies to, so sending one crafted INIT through a raw IP
socket and capturing it with another raw socket on the far side proves the DNAT and the filter.

The checksum has to be right: conntrack checks SCTP's CRC32c in prerouting and treats a packet with
a bad one as invalid, which then is never DNATed. An INIT that arrives translated therefore also
proves the checksum. The listener ignores packets with a bad checksum (an SCTP stack would drop
them too), so "got" always means a valid packet arrived.

Usage (as root, inside the wanted network namespace; Python 3 standard library only):

    sctp.py send DST_IP DST_PORT [SRC_PORT]
        Sends one INIT from SRC_PORT (default: random 1024-65535) to DST_IP:DST_PORT; prints
        "sent SRC_PORT". The kernel picks the source address and builds the IP header.

    sctp.py listen PORT TIMEOUT_S
        Waits for an SCTP packet whose destination port is PORT; prints "ready" once the socket is
        open, then "got SRC_IP SRC_PORT DST_PORT" for the first such packet and exits 0, or exits 1
        after TIMEOUT_S seconds. Start it before the sender, and wait for "ready".

e2e: `nsenter -t CONTAINER_PID -n python3 sctp.py listen 9999 3` in the container's network
namespace (the host's python3; only the network namespace changes), then
`ip netns exec OUTSIDE python3 sctp.py send HOST_IP 8999`: an exposed port arrives with the
container's address and port, an unexposed one does not arrive.
"""

import os
import random
import select
import socket
import struct
import sys
import time

IPPROTO_SCTP = 132


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    """CRC32c (Castagnoli, reflected), as RFC 9260 appendix A defines SCTP's checksum."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def with_checksum(packet):
    """The packet with its checksum field filled in (computed over the packet with the field zero)."""
    zeroed = packet[:8] + b"\0\0\0\0" + packet[12:]
    # SCTP stores the CRC least significant byte first (the reflected CRC's natural byte order),
    # unlike every other field; Linux does the same (cpu_to_le32 in sctp_compute_cksum).
    return packet[:8] + struct.pack("<I", crc32c(zeroed)) + packet[12:]


def checksum_ok(packet):
    return len(packet) >= 12 and with_checksum(packet)[8:12] == packet[8:12]


def init_packet(src_port, dst_port):
    """Common header (verification tag 0, as an INIT requires) and one INIT chunk, no parameters."""
    initiate_tag = random.randint(1, 0xFFFFFFFF)  # must not be 0
    chunk = struct.pack("!BBHIIHHI", 1, 0, 20, initiate_tag, 65535, 10, 10, random.randint(0, 0xFFFFFFFF))
    header = struct.pack("!HHII", src_port, dst_port, 0, 0)
    return with_checksum(header + chunk)


def send(dst_ip, dst_port, src_port=None):
    src_port = src_port if src_port is not None else random.randint(1024, 65535)
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP) as s:
        s.sendto(init_packet(src_port, dst_port), (dst_ip, 0))
    print(f"sent {src_port}", flush=True)
    return 0


def listen(port, timeout_s):
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_SCTP) as s:
        print("ready", flush=True)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return 1
            readable, _, _ = select.select([s], [], [], left)
            if not readable:
                return 1
            data, (src_ip, _) = s.recvfrom(65535)
            # IPv4 raw sockets deliver the IP header too.
            ihl = (data[0] & 0x0F) * 4
            sctp = data[ihl:]
            if len(sctp) < 12:
                continue
            sport, dport = struct.unpack("!HH", sctp[:4])
            if dport != port:
                continue
            if not checksum_ok(sctp):
                print(f"bad checksum from {src_ip} {sport} {dport}: ignored", file=sys.stderr, flush=True)
                continue
            print(f"got {src_ip} {sport} {dport}", flush=True)
            return 0


def port_arg(text, what):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        sys.exit(f"sctp.py: {what} must be 1-65535, got {text!r}")
    return value


def main(argv):
    usage = "usage: sctp.py send DST_IP DST_PORT [SRC_PORT] | listen PORT TIMEOUT_S"
    if len(argv) >= 1 and argv[0] == "send" and len(argv) in (3, 4):
        src = port_arg(argv[3], "SRC_PORT") if len(argv) == 4 else None
        return send(argv[1], port_arg(argv[2], "DST_PORT"), src)
    if len(argv) == 3 and argv[0] == "listen":
        try:
            timeout_s = float(argv[2])
        except ValueError:
            sys.exit(f"sctp.py: TIMEOUT_S must be a number of seconds, got {argv[2]!r}")
        return listen(port_arg(argv[1], "PORT"), timeout_s)
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("sctp.py: raw sockets need root (CAP_NET_RAW)")
    sys.exit(main(sys.argv[1:]))
