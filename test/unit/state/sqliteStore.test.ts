import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../../src/state/sqliteStore.js';
import { StoreConflict, StoreUnusable } from '../../../src/state/store.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'portnet-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('SqliteStore', () => {
  it('keeps what was committed across a reopen, and lists by prefix in key order', async () => {
    const dir = tempDir();
    const a = SqliteStore.open(dir);
    await a.commit([{ put: 'ep/b', value: { n: 2 } }, { put: 'ep/a', value: { n: 1 } }, { put: 'net/x', value: 'x' }]);
    await a.close();
    const b = SqliteStore.open(dir);
    expect(await b.list('ep/')).toEqual([['ep/a', { n: 1 }], ['ep/b', { n: 2 }]]);
    expect(await b.get('net/x')).toBe('x');
    expect(await b.get('net/y')).toBeUndefined();
    await b.close();
  });

  it('applies all ops or none when a guard fails', async () => {
    const s = SqliteStore.open(tempDir());
    await s.commit([{ put: 'alloc/p/1', value: 1 }]);
    await expect(s.commit([{ put: 'alloc/p/2', value: 2 }, { put: 'alloc/p/1', value: 9 }], [{ key: 'alloc/p/1', exists: false }])).rejects.toBeInstanceOf(
      StoreConflict,
    );
    expect(await s.list('alloc/')).toEqual([['alloc/p/1', 1]]);
    await s.commit([{ delete: 'alloc/p/1' }], [{ key: 'alloc/p/1', exists: true }]);
    expect(await s.list('alloc/')).toEqual([]);
    await s.close();
  });

  it('makes its directory private (0700)', async () => {
    const dir = join(tempDir(), 'state');
    const s = SqliteStore.open(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await s.close();
  });

  it('refuses a corrupt file with an error that says what to do, rather than starting empty', async () => {
    const dir = tempDir();
    const s = SqliteStore.open(dir);
    for (let i = 0; i < 200; i++) await s.commit([{ put: `k/${i}`, value: 'x'.repeat(200) }]);
    await s.close();
    const file = join(dir, 'state.db');
    const bytes = readFileSync(file);
    // Scribble over the b-tree pages but keep the header, as a torn disk write would.
    bytes.fill(0x5a, 4096, bytes.length);
    writeFileSync(file, bytes);
    let error: unknown;
    try {
      SqliteStore.open(dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StoreUnusable);
    expect((error as Error).message).toMatch(/cannot be used .*will not start with an empty state.*move the file aside/s);
  });
});
