import { cidrContainsCidr, cidrFirst, cidrLast, formatCidr, formatIp, quote } from './address.js';
import { type Cidr, type Family, IpamError } from './types.js';

/** The addresses one pool may hand out: every value in [first, last] except those in `excluded`. */
export interface UsableRange {
  family: Family;
  first: bigint;
  last: bigint;
  /** Reserved addresses inside [first, last] (network, broadcast, subnet-router anycast). */
  excluded: ReadonlySet<bigint>;
}

/**
 * Addresses of `pool` that are never handed out. IPv4 /31 and /32 have no network or broadcast address
 * (RFC 3021); an IPv6 subnet's first address is the subnet-router anycast (RFC 4291 §2.6.1), except on /127
 * (RFC 6164) and /128, where every address is a host.
 */
function reservedAddresses(pool: Cidr): bigint[] {
  if (pool.family === 4) return pool.prefix <= 30 ? [cidrFirst(pool), cidrLast(pool)] : [];
  return pool.prefix <= 126 ? [cidrFirst(pool)] : [];
}

/**
 * The range addresses are allocated from. `subPool` (Docker's --ip-range) narrows it; the pool's reserved
 * addresses stay reserved when they fall inside the sub-pool.
 */
export function usableRange(pool: Cidr, subPool?: Cidr): UsableRange {
  if (subPool && !cidrContainsCidr(pool, subPool)) {
    throw new IpamError(`SubPool ${quote(formatCidr(subPool))} is not inside Pool ${quote(formatCidr(pool))}`);
  }
  const within = subPool ?? pool;
  const first = cidrFirst(within);
  const last = cidrLast(within);
  const excluded = new Set(reservedAddresses(pool).filter((v) => v >= first && v <= last));
  return { family: pool.family, first, last, excluded };
}

/** Whether `value` may be handed out from `range` (inside it and not reserved). */
export function isAllocatable(range: UsableRange, value: bigint): boolean {
  return value >= range.first && value <= range.last && !range.excluded.has(value);
}

export function capacity(range: UsableRange): bigint {
  return range.last - range.first + 1n - BigInt(range.excluded.size);
}

/**
 * The next free address after `cursor` (the address handed out last), wrapping at the end of the range, or
 * undefined when none is left. Starting after the cursor rather than at the bottom makes a just-released
 * address the last candidate, not the first, so that ARP entries, conntrack state and peers still holding the
 * old address do not reach the next container by mistake.
 *
 * `takenCount` must be the number of allocatable addresses of this range for which `isTaken` is true (not
 * addresses held elsewhere in the pool, such as a gateway outside the --ip-range). It lets a full pool answer
 * at once, and it bounds the scan: each step past a taken or reserved address uses up one of them, so a
 * huge IPv6 range is never walked further than its holders.
 */
export function nextFree(
  range: UsableRange,
  cursor: bigint | undefined,
  isTaken: (value: bigint) => boolean,
  takenCount: bigint,
): bigint | undefined {
  const size = range.last - range.first + 1n;
  if (takenCount >= capacity(range)) return undefined;
  const start = cursor === undefined || cursor < range.first || cursor >= range.last ? range.first : cursor + 1n;
  const maxSteps = takenCount + BigInt(range.excluded.size) + 1n;
  const steps = maxSteps < size ? maxSteps : size;
  let value = start;
  for (let i = 0n; i < steps; i++) {
    if (!range.excluded.has(value) && !isTaken(value)) return value;
    value = value === range.last ? range.first : value + 1n;
  }
  // More addresses answered "taken" than takenCount admits: the caller's count and its lookup disagree.
  throw new IpamError(
    `allocation from ${formatIp({ family: range.family, value: range.first })}-` +
      `${formatIp({ family: range.family, value: range.last })} found more taken addresses than takenCount ${takenCount}`,
  );
}
