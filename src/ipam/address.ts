import IPCIDR from 'ip-cidr';
import { type Cidr, type Family, type Ip, IpamError } from './types.js';

/** Address width in bits. */
export function bitsOf(family: Family): 32 | 128 {
  return family === 4 ? 32 : 128;
}

function maxValue(family: Family): bigint {
  return (1n << BigInt(bitsOf(family))) - 1n;
}

/** The host part of a prefix as a mask (all ones for /0 … zero for /32 or /128). */
function hostMask(family: Family, prefix: number): bigint {
  return (1n << BigInt(bitsOf(family) - prefix)) - 1n;
}

/**
 * Quotes user input for an error message. JSON quoting keeps control characters from forging log lines, and a
 * cap keeps a megabyte of junk out of the reply.
 */
export function quote(text: unknown): string {
  const s = typeof text === 'string' ? text : String(text);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

// Octets 0-255 without leading zeros: `010` means 8 to inet_aton and 10 to others, so it is refused outright.
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
const V4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
// Hex groups, colons and an optional dotted tail only: this refuses zones (`%eth0`), prefixes and brackets.
const V6_CHARS = /^[0-9A-Fa-f:.]+$/;

function parseV4Value(text: string): bigint | undefined {
  const m = V4.exec(text);
  if (!m) return undefined;
  return m.slice(1).reduce((acc, octet) => (acc << 8n) | BigInt(octet), 0n);
}

function parseV6Value(text: string): bigint | undefined {
  if (!V6_CHARS.test(text)) return undefined;
  // ip-cidr reads any `x:…:a.b.c.d` as plain IPv4, so the dotted tail is turned into two hex groups first.
  let hex = text;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4Value(tail);
    if (v4 === undefined) return undefined;
    hex = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  if (hex.includes('.')) return undefined;
  let parsed: ReturnType<typeof IPCIDR.createAddress>;
  try {
    parsed = IPCIDR.createAddress(hex);
  } catch {
    return undefined;
  }
  if (!('canonicalForm' in parsed)) return undefined;
  return BigInt(`0x${parsed.canonicalForm().replaceAll(':', '')}`);
}

function tryParseIp(text: string): Ip | undefined {
  if (text.includes(':')) {
    const value = parseV6Value(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseV4Value(text);
  return value === undefined ? undefined : { family: 4, value };
}

/** A bare IPv4 or IPv6 address: no prefix, no zone, no whitespace, no leading zeros in IPv4 octets. */
export function parseIp(text: string, field: string): Ip {
  const ip = typeof text === 'string' ? tryParseIp(text) : undefined;
  if (!ip) throw new IpamError(`${field} ${quote(text)} is not an IP address`);
  return ip;
}

// Decimal without leading zeros, so that `/024` is not silently read as /24.
const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

function splitPrefixed(text: string, field: string): { ip: Ip; prefix: number } {
  if (typeof text !== 'string' || !text.includes('/')) {
    throw new IpamError(`${field} ${quote(text)} is not a CIDR (expected address/prefix, e.g. 198.18.1.0/24)`);
  }
  const slash = text.indexOf('/');
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const ip = tryParseIp(addressText);
  if (!ip) throw new IpamError(`${field} ${quote(text)} is not a CIDR: ${quote(addressText)} is not an IP address`);
  const bits = bitsOf(ip.family);
  const prefix = PREFIX.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix <= bits)) {
    throw new IpamError(
      `${field} ${quote(text)} has an invalid prefix length ${quote(prefixText)} (IPv${ip.family} allows 0 to ${bits})`,
    );
  }
  return { ip, prefix };
}

/** The prefix that contains `ip`, host bits cleared. */
export function cidrOf(ip: Ip, prefix: number): Cidr {
  return { family: ip.family, network: ip.value & ~hostMask(ip.family, prefix), prefix };
}

/**
 * `a.b.c.d/n` or an IPv6 equivalent. With `strict`, the host bits must be zero: a pool given as
 * `198.18.1.10/24` is almost certainly a typo, and silently widening it would hand out addresses nobody asked for.
 */
export function parseCidr(text: string, field: string, options: { strict?: boolean } = {}): Cidr {
  const { ip, prefix } = splitPrefixed(text, field);
  const cidr = cidrOf(ip, prefix);
  if (options.strict && cidr.network !== ip.value) {
    throw new IpamError(
      `${field} ${quote(text)} has host bits set; did you mean ${quote(formatCidr(cidr))}?`,
    );
  }
  return cidr;
}

/** Docker's `198.18.1.10/24` form (an address together with its subnet's length): host bits are the point. */
export function parseAddressWithPrefix(text: string, field: string): { ip: Ip; prefix: number } {
  return splitPrefixed(text, field);
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString()).join('.');
}

/** RFC 5952: lower case, no leading zeros, the longest run (first on a tie) of two or more zero groups as `::`. */
function formatV6(value: bigint): string {
  // RFC 5952 §5: IPv4-mapped addresses are written with their IPv4 tail, as `ip` and Go print them.
  if (value >> 32n === 0xffffn) return `::ffff:${formatV4(value & 0xffffffffn)}`;
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function formatIp(ip: Ip): string {
  if (ip.value < 0n || ip.value > maxValue(ip.family)) {
    throw new IpamError(`value ${ip.value} is out of range for IPv${ip.family}`);
  }
  return ip.family === 4 ? formatV4(ip.value) : formatV6(ip.value);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.network })}/${c.prefix}`;
}

export function cidrSize(c: Cidr): bigint {
  return hostMask(c.family, c.prefix) + 1n;
}

export function cidrFirst(c: Cidr): bigint {
  return c.network;
}

export function cidrLast(c: Cidr): bigint {
  return c.network + hostMask(c.family, c.prefix);
}

export function cidrContains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && ip.value >= cidrFirst(c) && ip.value <= cidrLast(c);
}

export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family && cidrFirst(outer) <= cidrFirst(inner) && cidrLast(inner) <= cidrLast(outer)
  );
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && cidrFirst(a) <= cidrLast(b) && cidrFirst(b) <= cidrLast(a);
}

const KEY = /^([46])-([0-9a-f]{32})$/;

/**
 * A fixed-width key (`4-` or `6-` and 32 hex digits) whose string order is numeric order within a family, so a
 * database or etcd range scan returns addresses sorted.
 */
export function ipKey(ip: Ip): string {
  return `${ip.family}-${ip.value.toString(16).padStart(32, '0')}`;
}

export function parseIpKey(key: string): Ip {
  const m = KEY.exec(key);
  const family = m?.[1] === '4' ? 4 : 6;
  const value = m?.[2] === undefined ? undefined : BigInt(`0x${m[2]}`);
  if (value === undefined || value > maxValue(family)) throw new IpamError(`ip key ${quote(key)} is malformed`);
  return { family, value };
}
