import type { AllocationRecord, CursorRecord, EndpointRecord, NetworkRecord, PoolRecord } from './records.js';
import type { Store, StoreGuard, StoreOp } from './store.js';

/** Key layout of the store, in one place. */
export const keys = {
  pool: (poolId: string) => `pool/${poolId}`,
  cursor: (poolId: string) => `cursor/${poolId}`,
  alloc: (poolId: string, ipKey: string) => `alloc/${poolId}/${ipKey}`,
  allocPrefix: (poolId: string) => `alloc/${poolId}/`,
  carveCursor: (range: string) => `carve/${range}`,
  network: (id: string) => `net/${id}`,
  endpoint: (id: string) => `ep/${id}`,
};

/**
 * The store's content mirrored in memory. portnet is the only writer of its state file (a lock
 * guarantees it), so reads come from here and every write goes through commit(), which changes
 * the mirror only after the store has committed.
 */
export class State {
  /** Entries grouped by the key's first segment (pool, alloc, net, ep, ...), so listing networks never walks addresses. */
  private readonly kinds = new Map<string, Map<string, unknown>>();
  /** Number of held addresses per pool, so that exhaustion is known without counting. */
  private readonly allocCounts = new Map<string, number>();

  private constructor(private readonly store: Store) {}

  static async load(store: Store): Promise<State> {
    const state = new State(store);
    for (const [key, value] of await store.list<unknown>('')) state.set(key, value);
    return state;
  }

  async commit(ops: StoreOp[], guards: StoreGuard[] = []): Promise<void> {
    if (ops.length === 0) return;
    await this.store.commit(ops, guards);
    for (const op of ops) {
      if ('put' in op) this.set(op.put, op.value);
      else this.remove(op.delete);
    }
  }

  private kind(key: string): Map<string, unknown> {
    const name = key.slice(0, key.indexOf('/') + 1);
    let map = this.kinds.get(name);
    if (!map) this.kinds.set(name, (map = new Map()));
    return map;
  }

  private set(key: string, value: unknown): void {
    const map = this.kind(key);
    if (key.startsWith('alloc/') && !map.has(key)) this.bumpAlloc((value as AllocationRecord).poolId, 1);
    map.set(key, value);
  }

  private remove(key: string): void {
    const map = this.kind(key);
    const old = map.get(key);
    if (key.startsWith('alloc/') && old !== undefined) this.bumpAlloc((old as AllocationRecord).poolId, -1);
    map.delete(key);
  }

  private bumpAlloc(poolId: string, by: number): void {
    this.allocCounts.set(poolId, (this.allocCounts.get(poolId) ?? 0) + by);
  }

  has(key: string): boolean {
    return this.kind(key).has(key);
  }

  get<T>(key: string): T | undefined {
    return this.kind(key).get(key) as T | undefined;
  }

  private values<T>(prefix: string): T[] {
    const out: T[] = [];
    for (const [k, v] of this.kind(prefix)) if (k.startsWith(prefix)) out.push(v as T);
    return out;
  }

  pools(): PoolRecord[] {
    return this.values<PoolRecord>('pool/');
  }
  pool(id: string): PoolRecord | undefined {
    return this.get(keys.pool(id));
  }
  cursor(poolId: string): CursorRecord | undefined {
    return this.get(keys.cursor(poolId));
  }
  allocation(poolId: string, ipKey: string): AllocationRecord | undefined {
    return this.get(keys.alloc(poolId, ipKey));
  }
  allocations(poolId: string): AllocationRecord[] {
    return this.values<AllocationRecord>(keys.allocPrefix(poolId));
  }
  allocationCount(poolId: string): number {
    return this.allocCounts.get(poolId) ?? 0;
  }
  networks(): NetworkRecord[] {
    return this.values<NetworkRecord>('net/');
  }
  network(id: string): NetworkRecord | undefined {
    return this.get(keys.network(id));
  }
  endpoints(): EndpointRecord[] {
    return this.values<EndpointRecord>('ep/');
  }
  endpoint(id: string): EndpointRecord | undefined {
    return this.get(keys.endpoint(id));
  }
  /** Every key, for tests and for `portnet doctor`. */
  allKeys(): string[] {
    return [...this.kinds.values()].flatMap((m) => [...m.keys()]).sort();
  }
}
