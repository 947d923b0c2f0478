/**
 * Host IP literals: strict parsing and one canonical spelling, so that two spellings of one address
 * (`::1` / `0:0::1`, `2001:DB8::1` / `2001:db8::1`) compare equal in conflict checks and state.
 *
 * Canonical form is what Go's net.IP.String() prints, because that is how Docker marshals the
 * HostIP of a -p binding: dotted IPv4, RFC 5952 IPv6 (lower-case, longest zero run compressed),
 * and an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) printed as plain IPv4. Normalising the
 * mapped form (rather than refusing it) keeps the option and -p in agreement.
 */

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

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;

/** The canonical spelling of an IP literal, or undefined when `text` is not one (hostnames, zones, junk). */
export function canonicalIp(text: string): string | undefined {
  if (text.includes(':')) {
    const groups = parseV6(text);
    return groups === undefined ? undefined : formatV6(groups);
  }
  const octets = parseV4(text);
  return octets === undefined ? undefined : octets.join('.');
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

function parseV4(text: string): number[] | undefined {
  const m = V4_RE.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1, 5) as string[];
  // Leading zeros are refused, as Go does: "010" is octal 8 to some tools and decimal 10 to others.
  if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

/** Eight 16-bit groups, or undefined. Accepts `::` once and a trailing dotted IPv4 part. */
function parseV6(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1] ?? '', true) : [];
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  // `::` stands for at least one zero group.
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}

/** Colon-separated groups of one side of `::`; a dotted IPv4 may only end the address. */
function parseGroups(side: string, endsAddress: boolean): number[] | undefined {
  if (side === '') return [];
  const fields = side.split(':');
  const groups: number[] = [];
  for (const [i, field] of fields.entries()) {
    if (endsAddress && i === fields.length - 1 && field.includes('.')) {
      const v4 = parseV4(field);
      if (v4 === undefined) return undefined;
      const [a, b, c, d] = v4 as [number, number, number, number];
      groups.push((a << 8) | b, (c << 8) | d);
    } else if (HEX_GROUP_RE.test(field)) {
      groups.push(parseInt(field, 16));
    } else {
      return undefined;
    }
  }
  return groups;
}

function formatV6(groups: number[]): string {
  const isMapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (isMapped) {
    const [hi, lo] = [groups[6] ?? 0, groups[7] ?? 0];
    return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
  }
  // RFC 5952: compress the longest run of two or more zero groups; the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
