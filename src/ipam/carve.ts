import { bitsOf, cidrFirst, cidrLast, cidrOverlaps, formatCidr, quote } from './address.js';
import { type Cidr, IpamError } from './types.js';

interface Interval {
  first: bigint;
  last: bigint;
}

/** The in-use prefixes that touch `range`, clipped to it, sorted and merged into disjoint intervals. */
function occupied(range: Cidr, inUse: readonly Cidr[]): Interval[] {
  const lo = cidrFirst(range);
  const hi = cidrLast(range);
  const sorted = inUse
    .filter((c) => cidrOverlaps(range, c))
    .map((c) => ({ first: maxOf(cidrFirst(c), lo), last: minOf(cidrLast(c), hi) }))
    .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: Interval[] = [];
  for (const iv of sorted) {
    const top = merged[merged.length - 1];
    if (top && iv.first <= top.last + 1n) top.last = maxOf(top.last, iv.last);
    else merged.push({ ...iv });
  }
  return merged;
}

function maxOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function minOf(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/**
 * The lowest block start in [from, limit] (block of `size` addresses, aligned to `size`, ending at or before
 * `limit`) that touches no interval. Jumps over each interval instead of stepping block by block, so the cost
 * is the number of intervals, not the number of blocks.
 */
function firstFreeBlock(from: bigint, limit: bigint, size: bigint, taken: readonly Interval[]): bigint | undefined {
  let candidate = from;
  for (const iv of taken) {
    if (candidate + size - 1n > limit) return undefined;
    if (iv.last < candidate) continue;
    if (iv.first > candidate + size - 1n) return candidate;
    candidate = ((iv.last + size) / size) * size; // the first aligned start past this interval
  }
  return candidate + size - 1n <= limit ? candidate : undefined;
}

/**
 * The next `prefix`-sized subnet of `range` that overlaps nothing in `inUse`, searching round-robin from just
 * after `after` (the subnet handed out last). Round-robin keeps a released subnet out of circulation for as long
 * as possible, and gives Docker a fresh answer when it asks again while still holding an earlier one.
 */
export function carveSubnet(range: Cidr, prefix: number, inUse: readonly Cidr[], after?: Cidr): Cidr | undefined {
  const bits = bitsOf(range.family);
  if (!Number.isInteger(prefix) || prefix < range.prefix || prefix > bits) {
    throw new IpamError(
      `subnet prefix length ${quote(String(prefix))} cannot be carved from ${quote(formatCidr(range))}: ` +
        `it must be between ${range.prefix} and ${bits}`,
    );
  }
  const size = 1n << BigInt(bits - prefix);
  const lo = cidrFirst(range);
  const hi = cidrLast(range);
  const taken = occupied(range, inUse);

  let start = lo;
  if (after && cidrOverlaps(range, after)) {
    const next = ((cidrLast(after) + size) / size) * size;
    if (next <= hi) start = next;
  }
  const found =
    firstFreeBlock(start, hi, size, taken) ?? (start > lo ? firstFreeBlock(lo, start - 1n, size, taken) : undefined);
  return found === undefined ? undefined : { family: range.family, network: found, prefix };
}
