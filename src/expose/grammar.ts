import { caveat, describePort, overlap } from './conflicts.js';
import { formatRange, quote } from './format.js';
import { canonicalIp, isLoopbackHostIp } from './hostip.js';
import { ANY_SOURCES, parseSources } from './sources.js';
import { ExposeError, type Exposure, type Proto } from './types.js';

/** The endpoint option (`--network name=N,driver-opt=com.example.expose=…`). */
export const EXPOSE_OPTION = 'com.example.expose';

const SEPARATORS = /[\s,]+/;
const PORT_RANGE_RE = /^(\d+)(?:-(\d+))?$/;
const PROTOS: readonly string[] = ['tcp', 'udp', 'sctp'] satisfies Proto[];
// Linux's IFNAMSIZ leaves 15 characters; the set is what `ip link` names use in practice and keeps
// nft and log quoting trivial. A leading '-' or '.' would read as an option or a path to some tools.
const IFACE_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

type Fail = (why: string) => ExposeError;

/**
 * Parses the value of the expose option: items separated by whitespace and/or commas, each
 * `[HOST:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp|sctp][@SOURCE[+SOURCE...]]`.
 *
 * - No HOST_PORT (`80`, `127.0.0.1:80`, `[::1]:80`) exposes the same port on the host. Unlike Docker's
 *   `-p 80`, there is no ephemeral host port here: `ip::80` is refused, use -p for that.
 * - HOST is an IPv4 address, a bracketed IPv6 address or `%IFNAME`. No HOST: every address of both
 *   families. `0.0.0.0` means every IPv4 address only, `[::]` every IPv6 address only. Host IPs are
 *   canonicalised (hostip.ts); hostnames are refused. `%eth0` is every address of interface eth0,
 *   both families, for packets that arrive on it; the name is kept as given.
 * - SOURCE is an address or CIDR of either family (IPv6 unbracketed), or `any` to override the
 *   network's `com.example.expose.from`; see sources.ts. `+` joins them because Docker's --network
 *   syntax splits on commas. Loopback host IPs take no sources: only this host reaches them.
 * - Case-insensitive, since Docker's `--network` long syntax lower-cases the value anyway (interface
 *   names excepted: they are case-sensitive in Linux, so a capital can only come through paths that keep it).
 * - Empty items between separators are skipped, but a value with no item at all is an error: it is
 *   far more likely an unset shell variable or a quoting slip than a wish to expose nothing, which
 *   leaving the option out already says.
 * - Two items that share a host (address, port, protocol) are an error naming both, exact repeats
 *   included: within one endpoint they would be two DNATs for one destination.
 */
export function parseExpose(value: string, field: string = EXPOSE_OPTION): Exposure[] {
  if (typeof value !== 'string') throw new ExposeError(`${field}: expected a string, got ${quote(value)}`);
  const items = value.split(SEPARATORS).filter((item) => item !== '');
  if (items.length === 0) {
    throw new ExposeError(`${field}: value ${quote(value)} names no port (leave the option out to expose nothing)`);
  }
  const parsed = items.map((item) => ({ item, exposure: parseItem(item, field) }));
  for (const [j, later] of parsed.entries()) {
    for (const earlier of parsed.slice(0, j)) {
      const where = overlap(earlier.exposure, later.exposure);
      if (where) {
        throw new ExposeError(
          `${field}: items ${quote(earlier.item)} and ${quote(later.item)} both publish ${describePort(where)}${caveat(where)}`,
        );
      }
    }
  }
  return parsed.map((p) => p.exposure);
}

function parseItem(item: string, field: string): Exposure {
  const fail: Fail = (why) => new ExposeError(`${field}: item ${quote(item)} — ${why}`);

  let rest = item;
  let sources: string[] | undefined;
  // '@' is split off first: the sources' CIDRs carry a '/' that is not the protocol's.
  const at = rest.indexOf('@');
  if (at >= 0) {
    const list = rest.slice(at + 1);
    if (list.includes('@')) throw fail('more than one "@" (join sources with "+", e.g. 80@10.0.0.0/8+192.0.2.0/24)');
    if (list === '') throw fail('no source after "@"');
    const parsed = parseSources(list.split('+'), fail);
    sources = parsed === 'any' ? [...ANY_SOURCES] : parsed;
    rest = rest.slice(0, at);
  }
  let proto: Proto = 'tcp';
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const protoText = rest.slice(slash + 1);
    const lower = protoText.toLowerCase();
    if (!PROTOS.includes(lower)) throw fail(`unknown protocol ${quote(protoText)} (expected tcp, udp or sctp)`);
    proto = lower as Proto;
    rest = rest.slice(0, slash);
  }

  const { ipText, bracketed, ifaceText, hostText, containerText } = splitItem(rest, fail);
  const hostIp = ipText === undefined ? undefined : parseHostIp(ipText, bracketed, fail);
  const hostIface = ifaceText === undefined ? undefined : parseIface(ifaceText, fail);
  if (sources !== undefined && isLoopbackHostIp(hostIp)) {
    throw fail(
      `sources do not apply to loopback host IP ${quote(hostIp)}: only this host's own processes reach it, and they are never filtered`,
    );
  }
  const container = parseRange(containerText, hostText === undefined ? 'port' : 'container port', fail);
  const host = hostText === undefined ? container : parseRange(hostText, 'host port', fail);
  if (host.end - host.start !== container.end - container.start) {
    throw fail(
      `host ports ${formatRange(host.start, host.end)} and container ports ` +
        `${formatRange(container.start, container.end)} differ in length ` +
        `(${host.end - host.start + 1} vs ${container.end - container.start + 1})`,
    );
  }
  return {
    ...(hostIp === undefined ? {} : { hostIp }),
    ...(hostIface === undefined ? {} : { hostIface }),
    ...(sources === undefined ? {} : { sources }),
    hostPort: host.start,
    hostPortEnd: host.end,
    containerPort: container.start,
    containerPortEnd: container.end,
    proto,
    origin: 'option',
  };
}

interface ItemParts {
  ipText: string | undefined;
  bracketed: boolean;
  ifaceText?: string;
  hostText: string | undefined;
  containerText: string;
}

/** Splits `[HOST:][HOST_PORT:]CONTAINER_PORT` (protocol and sources already removed) into its texts. */
function splitItem(rest: string, fail: Fail): ItemParts {
  if (rest.startsWith('%')) {
    const colon = rest.indexOf(':');
    if (colon < 0) throw fail('expected ":" and a port after the interface name (e.g. %eth0:8080:80)');
    const ports = rest.slice(colon + 1).split(':');
    if (ports.length > 2) throw fail('too many ":"');
    const [first = '', second] = ports;
    return {
      ipText: undefined,
      bracketed: false,
      ifaceText: rest.slice(1, colon),
      hostText: second === undefined ? undefined : first,
      containerText: second ?? first,
    };
  }
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw fail('the "[" of the host IP is never closed');
    const after = rest.slice(close + 1);
    if (!after.startsWith(':')) throw fail('expected ":" and a port after the bracketed host IP');
    const ports = after.slice(1).split(':');
    if (ports.length > 2) throw fail('too many ":"');
    const [first = '', second] = ports;
    return {
      ipText: rest.slice(1, close),
      bracketed: true,
      hostText: second === undefined ? undefined : first,
      containerText: second ?? first,
    };
  }
  const parts = rest.split(':');
  if (parts.length > 3) throw fail('too many ":" (an IPv6 host IP goes in brackets, e.g. [::1]:8080:80)');
  const [a = '', b, c] = parts;
  if (c !== undefined && b !== undefined) return { ipText: a, bracketed: false, hostText: b, containerText: c };
  if (b !== undefined) {
    // Two parts are HOST_PORT:CONTAINER_PORT, or HOST_IP:CONTAINER_PORT when the first is no port.
    return PORT_RANGE_RE.test(a)
      ? { ipText: undefined, bracketed: false, hostText: a, containerText: b }
      : { ipText: a, bracketed: false, hostText: undefined, containerText: b };
  }
  return { ipText: undefined, bracketed: false, hostText: undefined, containerText: a };
}

function parseHostIp(text: string, bracketed: boolean, fail: Fail): string {
  if (text === '') throw fail('the host IP is empty');
  const ip = canonicalIp(text);
  if (bracketed) {
    if (ip === undefined || !text.includes(':')) throw fail(`host IP ${quote(`[${text}]`)} is not an IPv6 address`);
  } else if (ip === undefined) {
    throw fail(`host IP ${quote(text)} is not an IP address (hostnames are not accepted; IPv6 goes in brackets)`);
  }
  return ip;
}

function parseIface(text: string, fail: Fail): string {
  if (text === '') throw fail('the interface name after "%" is empty');
  if (!IFACE_RE.test(text)) {
    throw fail(
      `interface name ${quote(text)} is not valid (1-15 characters of A-Z a-z 0-9 _ . -, not starting with "-" or ".")`,
    );
  }
  // Packets from this host to itself never pass prerouting, where interface bindings live.
  if (text === 'lo') throw fail('%lo would never match: use 127.0.0.1 or [::1] to expose to this host\'s own processes');
  return text;
}

function parseRange(text: string, role: string, fail: Fail): { start: number; end: number } {
  if (text === '') {
    const hint = role === 'host port' ? " (an ephemeral host port is only available through Docker's -p)" : '';
    throw fail(`the ${role} is empty${hint}`);
  }
  const m = PORT_RANGE_RE.exec(text);
  if (!m) throw fail(`${role} ${quote(text)} is not a port number or range`);
  const start = parsePort(m[1] ?? '', role, fail);
  const end = m[2] === undefined ? start : parsePort(m[2], role, fail);
  if (start > end) throw fail(`${role} range ${text} is reversed`);
  return { start, end };
}

function parsePort(digits: string, role: string, fail: Fail): number {
  // Leading zeros are harmless (Docker accepts them); the length cap keeps Number() exact.
  const port = digits.replace(/^0+(?=\d)/, '').length > 5 ? Infinity : Number(digits);
  if (port < 1 || port > 65535) throw fail(`${role} ${digits} is out of range 1-65535`);
  return port;
}
