import { canonicalIp } from '../../expose/hostip.js';
import type { Proto } from '../../expose/types.js';
import { parseCidr, parseIp, formatCidr, formatIp, cidrFirst, cidrLast } from '../../ipam/address.js';

/**
 * Validation of every value that ends up in the nft script. The script is fed to `nft -f -`, so a
 * stray quote or newline in an interface name or address would change its meaning: anything that is
 * not exactly the expected shape is rejected here instead of being escaped.
 */
export class FirewallModelError extends Error {
  override name = 'FirewallModelError';
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses a dotted-quad IPv4 address into a 32-bit unsigned number. */
export function ipv4ToInt(text: string): number {
  const m = IPV4.exec(text);
  if (!m) throw new FirewallModelError(`not an IPv4 address: ${JSON.stringify(text)}`);
  let value = 0;
  for (const part of m.slice(1)) {
    const octet = Number(part);
    // "01" would be read as octal by some tools; refuse ambiguity rather than guess.
    if (octet > 255 || (part.length > 1 && part.startsWith('0'))) {
      throw new FirewallModelError(`not an IPv4 address: ${JSON.stringify(text)}`);
    }
    value = value * 256 + octet;
  }
  return value;
}

export function intToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** Canonical IPv4 address text. */
export function ipv4(text: string): string {
  return intToIpv4(ipv4ToInt(text));
}

export function isIpv6(text: string): boolean {
  return text.includes(':');
}

export function isLoopbackIpv4(text: string): boolean {
  return Math.floor(ipv4ToInt(text) / 2 ** 24) === 127;
}

export interface Cidr4 {
  /** First address as a number. */
  first: number;
  /** Last address as a number. */
  last: number;
  /** Canonical text, host bits cleared. */
  text: string;
}

export function cidr4(text: string): Cidr4 {
  const slash = text.indexOf('/');
  const lenText = slash < 0 ? '' : text.slice(slash + 1);
  if (slash < 0 || !/^\d{1,2}$/.test(lenText) || Number(lenText) > 32) {
    throw new FirewallModelError(`not an IPv4 CIDR: ${JSON.stringify(text)}`);
  }
  const len = Number(lenText);
  const size = 2 ** (32 - len);
  const first = Math.floor(ipv4ToInt(text.slice(0, slash)) / size) * size;
  return { first, last: first + size - 1, text: `${intToIpv4(first)}/${len}` };
}

export type Family = 4 | 6;

/** Canonical IPv6 address text (RFC 5952, as nft and Go print it). */
export function ipv6(text: string): string {
  let ip;
  try {
    ip = parseIp(text, 'address');
  } catch {
    throw new FirewallModelError(`not an IPv6 address: ${JSON.stringify(text)}`);
  }
  if (ip.family !== 6) throw new FirewallModelError(`not an IPv6 address: ${JSON.stringify(text)}`);
  return formatIp(ip);
}

/** An IPv6 address as 32 hex digits: string order is numeric order, without bigint comparisons. */
export function ipv6SortKey(text: string): string {
  return parseIp(text, 'address').value.toString(16).padStart(32, '0');
}

/**
 * A host IP of an exposure in the one spelling the state and Docker use (see expose/hostip.ts),
 * so that `::ffff:198.51.100.1` lands in the IPv4 maps and `0:0::1` is loopback.
 */
export function hostIp(text: string): string {
  const canonical = canonicalIp(text);
  if (canonical === undefined) throw new FirewallModelError(`not an IP address: ${JSON.stringify(text)}`);
  return canonical;
}

export function isLoopbackIp(canonical: string): boolean {
  return isIpv6(canonical) ? canonical === '::1' : isLoopbackIpv4(canonical);
}

/** A CIDR of either family, for the IPv6 pools and the source allowlists. */
export interface AnyCidr {
  family: Family;
  first: bigint;
  last: bigint;
  prefix: number;
  /** Canonical text, host bits cleared. */
  text: string;
}

export function anyCidr(text: string, what: string): AnyCidr {
  let c;
  try {
    // A bare address is one host: the allowlist grammar stores `198.51.100.7` as is.
    c = text.includes('/') ? parseCidr(text, what) : parseCidr(`${text}/${text.includes(':') ? 128 : 32}`, what);
  } catch (err) {
    throw new FirewallModelError(err instanceof Error ? err.message : `${what} ${JSON.stringify(text)} is not a CIDR`);
  }
  return { family: c.family, first: cidrFirst(c), last: cidrLast(c), prefix: c.prefix, text: formatCidr(c) };
}

export function cidr6(text: string): AnyCidr {
  const c = anyCidr(text, 'IPv6 pool');
  if (c.family !== 6) throw new FirewallModelError(`not an IPv6 CIDR: ${JSON.stringify(text)}`);
  return c;
}

/**
 * Host interface of an interface-bound exposure. The kernel allows any 1-15 bytes but '/', ':' and
 * whitespace; portnet allows the usual subset only, since the name is pasted into the script.
 */
const IFACE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

export function ifaceName(text: string): string {
  if (!IFACE.test(text)) {
    throw new FirewallModelError(
      `host interface ${JSON.stringify(text)} is not 1-15 characters of A-Z a-z 0-9 _ . - (not starting with - or .)`,
    );
  }
  return text;
}

/** Host side of an endpoint veth: exactly what the link adapter makes, nothing that needs quoting. */
const HOST_IF = /^pn[0-9a-f]{11}$/;

export function hostIf(text: string): string {
  if (!HOST_IF.test(text)) {
    throw new FirewallModelError(
      `endpoint interface ${JSON.stringify(text)} is not "pn" + 11 lower-case hex characters`,
    );
  }
  return text;
}

export function port(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new FirewallModelError(`${what} ${String(value)} is not a port number (1-65535)`);
  }
  return value;
}

const PROTOS: readonly Proto[] = ['tcp', 'udp', 'sctp'];

export function proto(value: string): Proto {
  if (!(PROTOS as readonly string[]).includes(value)) {
    throw new FirewallModelError(`unknown protocol ${JSON.stringify(value)}`);
  }
  return value as Proto;
}

/** IDs appear in `#` comments only; keep them on one line and short, as Docker shows them. */
export function shortId(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '?').slice(0, 12) || '?';
}
