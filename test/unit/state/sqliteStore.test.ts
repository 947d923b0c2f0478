import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
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

  it('makes its directory private (0700) and its files 0600, whatever the umask, also for files made before', async () => {
    const dir = join(tempDir(), 'state');
    const s = SqliteStore.open(dir);
    await s.commit([{ put: 'k', value: 1 }]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of ['state.db', 'state.db-wal', 'state.db-shm']) expect(statSync(join(dir, f)).mode & 0o777, f).toBe(0o600);
    await s.close();
    chmodSync(join(dir, 'state.db'), 0o644);
    chmodSync(dir, 0o755);
    await SqliteStore.open(dir).close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'state.db')).mode & 0o777).toBe(0o600);
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

// ---------------------------------------------------------------------------------------------
// Torn writes: a process that commits in a loop is killed at a random moment; the file must open
// and hold every commit that was acknowledged, each whole. The child runs the real SqliteStore,
// compiled from src/ by TypeScript's transpiler into a scratch directory inside the repository (so
// that it finds better-sqlite3).

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

function compileStore(): string {
  mkdirSync(join(REPO, '.testbed'), { recursive: true });
  const out = mkdtempSync(join(REPO, '.testbed', 'torn-'));
  dirs.push(out);
  for (const name of ['sqliteStore', 'store']) {
    const source = readFileSync(join(REPO, 'src/state', `${name}.ts`), 'utf8');
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    writeFileSync(join(out, `${name}.js`), js);
  }
  // Acknowledges commit i only after commit() returned, with the WAL's size at that moment.
  writeFileSync(
    join(out, 'writer.mjs'),
    `import { statSync } from 'node:fs';
import { SqliteStore } from './sqliteStore.js';
const [dir, mode] = process.argv.slice(2);
const s = SqliteStore.open(dir);
if (mode === 'no-checkpoint') s['db'].pragma('wal_autocheckpoint = 0');
for (let i = 0; ; i++) {
  const ops = [{ put: 'k/' + i + '/a', value: { i, pad: 'x'.repeat(300 + (i % 7) * 200) } }, { put: 'k/' + i + '/b', value: i }, { put: 'last', value: i }];
  if (i > 0) ops.push({ delete: 'k/' + (i - 1) + '/tmp' });
  ops.push({ put: 'k/' + i + '/tmp', value: i });
  await s.commit(ops);
  process.stdout.write(i + ' ' + statSync(s.path + '-wal').size + '\\n');
}
`,
  );
  return join(out, 'writer.mjs');
}

/** Runs the writer until `acks` commits are acknowledged (plus a random few ms), SIGKILLs it, returns the acks. */
function killWriter(writer: string, dir: string, mode: string, acks: number): Promise<Array<{ i: number; wal: number }>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    const seen: Array<{ i: number; wal: number }> = [];
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const [i, wal] = buffer.slice(0, nl).split(' ').map(Number);
        buffer = buffer.slice(nl + 1);
        seen.push({ i: i!, wal: wal! });
        if (seen.length === acks) setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 4));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer ended by itself (${code}): ${stderr}`));
      else resolve(seen);
    });
  });
}

async function expectAcknowledgedCommits(dir: string, acked: number): Promise<void> {
  const s = SqliteStore.open(dir); // opens: the integrity check passes
  const last = await s.get<number>('last');
  // Every acknowledged commit is there; at most the one in flight at the kill besides.
  expect(last).toBeGreaterThanOrEqual(acked);
  expect(last).toBeLessThanOrEqual(acked + 1);
  const rows = new Map(await s.list<unknown>('k/'));
  for (let i = 0; i <= last!; i++) {
    expect(rows.get(`k/${i}/a`), `commit ${i}`).toMatchObject({ i });
    expect(rows.get(`k/${i}/b`), `commit ${i}`).toBe(i);
  }
  // Nothing of a later commit, and the delete of each commit applied with its puts.
  expect(rows.size).toBe(2 * (last! + 1) + 1);
  expect(rows.get(`k/${last}/tmp`)).toBe(last);
  await s.close();
}

describe('SqliteStore under a kill mid-commit', () => {
  it('SIGKILL while committing in a loop (checkpoints included): every acknowledged commit survives, whole', async () => {
    const writer = compileStore();
    for (let round = 0; round < 3; round++) {
      const dir = tempDir();
      const seen = await killWriter(writer, dir, 'default', 100 + Math.floor(Math.random() * 800));
      await expectAcknowledgedCommits(dir, seen.at(-1)!.i);
    }
  }, 60_000);

  it('power loss: the WAL beyond the last fsync torn (cut, garbage appended, shared memory lost): the file opens at the last acknowledged commit', async () => {
    const writer = compileStore();
    for (let round = 0; round < 6; round++) {
      const dir = tempDir();
      const seen = await killWriter(writer, dir, 'no-checkpoint', 50 + Math.floor(Math.random() * 400));
      const { i: acked, wal: synced } = seen.at(-1)!;
      const walPath = join(dir, 'state.db-wal');
      const wal = readFileSync(walPath);
      // synchronous=FULL: the WAL was fsynced up to `synced` when commit `acked` returned. Past that,
      // a power cut may keep any prefix of what was being written, then junk from half-written sectors.
      const cut = synced + Math.floor(Math.random() * (wal.length - synced + 1));
      const junk = Buffer.from(Array.from({ length: Math.floor(Math.random() * 9000) }, () => Math.floor(Math.random() * 256)));
      writeFileSync(walPath, Buffer.concat([wal.subarray(0, cut), junk]));
      rmSync(join(dir, 'state.db-shm'), { force: true });
      await expectAcknowledgedCommits(dir, acked);
    }
  }, 60_000);
});
