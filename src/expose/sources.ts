/**
 * Source allowlists: which client addresses may use an exposure (`80@10.0.0.0/8+2001:db8::/32`) or,
 * through `com.example.expose.from`, every exposure of a network that names none.
 *
 * Lists are canonical so that state, logs, `portnet ls` and the firewall all agree on one spelling:
 * RFC 5952 / dotted CIDRs, IPv4 first, numeric order, no entry covered by another (a covered entry
 * adds nothing, and overlapping intervals are refused by nft in one set element list).
 */

import { cidrContainsCidr, cidrOf, formatCidr, parseIp } from '../ipam/address.js';
import type { Cidr, Ip } from '../ipam/types.js';
import { isLoopbackHostIp } from './hostip.js';
import { quote } from './quote.js';
import type { Exposure } from './types.js';

/**
 * What `@any` is stored as. It must differ from "no list" (undefined), which lets the network
 * default apply, while `any` is there precisely to override a restrictive default.
 */
export const ANY_SOURCES: readonly string[] = ['0.0.0.0/0', '::/0'];

/** The word for "every source"; case-insensitive, as Docker's --network syntax lower-cases values anyway. */
export const ANY = 'any';

/** Whether a canonical list allows every source of both families (what `@any` parses to). */
export function allowsAnySource(sources: readonly string[] | undefined): boolean {
  return sources === undefined || (sources.length === ANY_SOURCES.length && ANY_SOURCES.every((s, i) => sources[i] === s));
}

/**
 * The allowlist an exposure is held to, and where it comes from: its own `@…`, else the network's
 * com.example.expose.from. Never for a loopback exposure: only the host's own processes reach it,
 * and they are never filtered. The firewall and `portnet ls` both read it from here.
 */
export function effectiveSources(
  x: Pick<Exposure, 'sources' | 'hostIp'>,
  networkDefault: readonly string[] | undefined,
): { sources: string[]; from: 'item' | 'network' } | undefined {
  if (isLoopbackHostIp(x.hostIp)) return undefined;
  if (x.sources !== undefined) return { sources: [...x.sources], from: 'item' };
  return networkDefault === undefined ? undefined : { sources: [...networkDefault], from: 'network' };
}

type Fail = (why: string) => Error;

// Decimal without leading zeros, so that `/08` is not silently read as /8 (or as octal by someone else).
const PREFIX = /^(0|[1-9][0-9]{0,2})$/;

/**
 * Parses source texts into a canonical list, or `'any'` when the texts say only that. Mixing
 * `any` with addresses is refused: either the addresses are pointless or `any` is a slip, and
 * guessing which would silently widen or narrow who gets in.
 */
export function parseSources(texts: readonly string[], fail: Fail): string[] | 'any' {
  if (texts.length === 0) throw fail('no source is given');
  const cidrs: Cidr[] = [];
  let any: string | undefined;
  for (const text of texts) {
    if (text === '') throw fail('a source is empty (sources are joined by a single "+")');
    if (text.toLowerCase() === ANY) {
      any ??= text;
      continue;
    }
    cidrs.push(parseSource(text, fail));
  }
  if (any !== undefined) {
    if (cidrs.length > 0) {
      throw fail(`${quote(any)} is mixed with addresses (${ANY} already allows every source; keep one or the other)`);
    }
    return 'any';
  }
  return canonicalList(cidrs);
}

/** One source: an address (a /32 or /128) or a CIDR with its host bits clear; IPv6 may be bracketed. */
export function parseSource(text: string, fail: Fail): Cidr {
  const slash = text.indexOf('/');
  let addressText = slash < 0 ? text : text.slice(0, slash);
  let prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  // Brackets are tolerated around IPv6, `[2001:db8::]/32` and `[2001:db8::/32]` alike, since people
  // carry them over from host IPs; as there, they never hold IPv4.
  let bracketed = false;
  if (addressText.startsWith('[') && addressText.endsWith(']')) {
    [addressText, bracketed] = [addressText.slice(1, -1), true];
  } else if (addressText.startsWith('[') && prefixText?.endsWith(']')) {
    [addressText, prefixText, bracketed] = [addressText.slice(1), prefixText.slice(0, -1), true];
  }
  let ip: Ip | undefined;
  try {
    ip = parseIp(addressText, 'source');
  } catch {
    ip = undefined;
  }
  if (ip === undefined) throw fail(`source ${quote(text)} is not an IP address or CIDR (hostnames are not accepted)`);
  if (bracketed && ip.family !== 6) throw fail(`source ${quote(text)}: only IPv6 may be written in brackets`);
  const bits = ip.family === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    prefix = PREFIX.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix <= bits)) {
      throw fail(`source ${quote(text)} has an invalid prefix length ${quote(prefixText)} (IPv${ip.family} allows 0 to ${bits})`);
    }
  }
  const cidr = cidrOf(ip, prefix);
  if (cidr.network !== ip.value) {
    // A typo far more often than a wish: 10.1.2.3/8 widened silently would let in 16M addresses.
    throw fail(`source ${quote(text)} has host bits set; did you mean ${formatCidr(unmapV4(cidr))}?`);
  }
  return unmapV4(cidr);
}

/** The canonical text of a list of CIDR texts already canonical (e.g. read back from state). */
export function formatSources(sources: readonly string[]): string {
  return allowsAnySource(sources) ? ANY : sources.join('+');
}

/**
 * An IPv4-mapped IPv6 prefix (`::ffff:10.0.0.0/104`) as plain IPv4, as host IPs are (hostip.ts):
 * the firewall sees such clients as IPv4, so a mapped entry would match nothing.
 */
function unmapV4(c: Cidr): Cidr {
  if (c.family !== 6 || c.prefix < 96 || c.network >> 32n !== 0xffffn) return c;
  return { family: 4, network: c.network & 0xffffffffn, prefix: c.prefix - 96 };
}

function canonicalList(cidrs: readonly Cidr[]): string[] {
  const sorted = [...cidrs].sort(
    (a, b) => a.family - b.family || (a.network < b.network ? -1 : a.network > b.network ? 1 : a.prefix - b.prefix),
  );
  const kept: Cidr[] = [];
  // After sorting, a covering entry comes before everything it covers, so one pass suffices.
  for (const c of sorted) if (!kept.some((k) => cidrContainsCidr(k, c))) kept.push(c);
  return kept.map(formatCidr);
}
