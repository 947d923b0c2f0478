/**
 * Host IP literals: strict parsing and one canonical spelling, so that two spellings of one address
 * (`::1` / `0:0::1`, `2001:DB8::1` / `2001:db8::1`) compare equal in conflict checks and state.
 *
 * Canonical form is what Go's net.IP.String() prints, because that is how Docker marshals the
 * HostIP of a -p binding: dotted IPv4, RFC 5952 IPv6 (lower-case, longest zero run compressed),
 * and an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) printed as plain IPv4. Normalising the
 * mapped form (rather than refusing it) keeps the option and -p in agreement.
 */

import { formatIp, parseIp } from '../ipam/address.js';

export type IpFamily = 4 | 6;

/** The IPv4 wildcard: every IPv4 address of the host, and no IPv6 address. */
export const ALL_V4 = '0.0.0.0';
/** The IPv6 wildcard: every IPv6 address of the host, and no IPv4 address. */
export const ALL_V6 = '::';

/** Which host addresses an exposure's hostIp covers. */
export type AddressScope =
  | { kind: 'any' }
  | { kind: 'family'; family: IpFamily }
  | { kind: 'one'; family: IpFamily; address: string };

/** The canonical spelling of an IP literal, or undefined when `text` is not one (hostnames, zones, junk). */
export function canonicalIp(text: string): string | undefined {
  let ip;
  try {
    ip = parseIp(text, 'host IP');
  } catch {
    return undefined;
  }
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) return formatIp({ family: 4, value: ip.value & 0xffffffffn });
  return formatIp(ip);
}

/** Family of a canonical IP literal. */
export function ipFamily(canonical: string): IpFamily {
  return canonical.includes(':') ? 6 : 4;
}

export function addressScope(hostIp: string | undefined): AddressScope {
  if (hostIp === undefined) return { kind: 'any' };
  const family = ipFamily(hostIp);
  if (hostIp === ALL_V4 || hostIp === ALL_V6) return { kind: 'family', family };
  return { kind: 'one', family, address: hostIp };
}

/**
 * The addresses two hostIps have in common, as a hostIp (undefined = any), or null when they share
 * none. A family wildcard covers its own family only: DNAT is per family, so 0.0.0.0 and :: never meet.
 */
export function commonAddresses(a: string | undefined, b: string | undefined): string | undefined | null {
  const sa = addressScope(a);
  const sb = addressScope(b);
  if (sa.kind === 'any') return b;
  if (sb.kind === 'any') return a;
  if (sa.family !== sb.family) return null;
  if (sa.kind === 'family') return b;
  if (sb.kind === 'family') return a;
  return sa.address === sb.address ? a : null;
}

/**
 * Whether a canonical host IP is a loopback address (127.0.0.0/8, ::1). Only the host's own
 * processes can reach such an exposure, so the firewall never filters it by source.
 */
export function isLoopbackHostIp(hostIp: string | undefined): boolean {
  if (hostIp === undefined) return false;
  return hostIp === '::1' || (ipFamily(hostIp) === 4 && hostIp.startsWith('127.'));
}
