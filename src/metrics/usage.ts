import { parseCidr } from '../ipam/address.js';
import { capacity, usableRange } from '../ipam/allocate.js';
import type { PoolRecord } from '../state/records.js';
import type { State } from '../state/state.js';

export interface PoolUsage {
  id: string;
  pool: string;
  /** Addresses held in the pool: endpoints, --ip, --aux-address and Docker's gateway request alike. */
  allocated: number;
  /** Addresses the pool can hand out: its --ip-range if given, else the pool, without network and broadcast. */
  capacity: number;
}

export function poolCapacity(pool: PoolRecord): number {
  const cidr = parseCidr(pool.pool, 'pool', { strict: true });
  const range = usableRange(cidr, pool.subPool ? parseCidr(pool.subPool, 'SubPool', { strict: true }) : undefined);
  const n = capacity(range);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** Allocated and capacity per pool, read from the in-memory mirror (no store access). */
export function poolUsage(state: State): PoolUsage[] {
  return state
    .pools()
    .map((p) => ({ id: p.id, pool: p.pool, allocated: state.allocationCount(p.id), capacity: poolCapacity(p) }))
    .sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0));
}
