import { type Store, type StoreGuard, type StoreOp, StoreConflict } from './store.js';

/** The fake Store for unit tests: same contract, kept in a Map, values deep-copied like a real store. */
export class MemoryStore implements Store {
  readonly data = new Map<string, string>();
  commits = 0;

  async get<T>(key: string): Promise<T | undefined> {
    const text = this.data.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async list<T>(prefix: string): Promise<Array<[string, T]>> {
    return [...this.data.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, JSON.parse(v) as T]);
  }

  async commit(ops: StoreOp[], guards: StoreGuard[] = []): Promise<void> {
    for (const g of guards) {
      if (this.data.has(g.key) !== g.exists) throw new StoreConflict(`${g.key} ${g.exists ? 'does not exist' : 'already exists'}`);
    }
    for (const op of ops) {
      if ('put' in op) this.data.set(op.put, JSON.stringify(op.value));
      else this.data.delete(op.delete);
    }
    this.commits++;
  }

  async close(): Promise<void> {}
}
