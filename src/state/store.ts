/**
 * The narrow, transactional key-value contract every state backend implements. It is shaped like
 * etcd's (get, prefix list, one atomic commit guarded by compare conditions) so that a shared
 * store can replace the embedded one without touching the domain.
 */
export type StoreOp = { put: string; value: unknown } | { delete: string };

/** A precondition of a commit: the key must (or must not) exist when the commit applies. */
export interface StoreGuard {
  key: string;
  exists: boolean;
}

export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  /** Every entry whose key starts with `prefix`, ordered by key. */
  list<T>(prefix: string): Promise<Array<[string, T]>>;
  /** Applies every op or none; throws StoreConflict when a guard does not hold. */
  commit(ops: StoreOp[], guards?: StoreGuard[]): Promise<void>;
  close(): Promise<void>;
}

export class StoreConflict extends Error {
  override name = 'StoreConflict';
}

/** The state file cannot be used; the message says what to do about it. */
export class StoreUnusable extends Error {
  override name = 'StoreUnusable';
}
