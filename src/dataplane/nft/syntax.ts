import type { Proto } from '../../expose/types.js';

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
