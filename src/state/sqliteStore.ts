import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Store, type StoreGuard, type StoreOp, StoreConflict, StoreUnusable } from './store.js';

const SCHEMA_VERSION = 1;

/**
 * The embedded Store: one SQLite file in WAL mode with synchronous=FULL, so that a commit that
 * returned survives SIGKILL and power loss, and a torn commit is rolled back on the next open.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly getStmt: Database.Statement;
  private readonly listStmt: Database.Statement;
  private readonly putStmt: Database.Statement;
  private readonly delStmt: Database.Statement;

  static open(stateDir: string): SqliteStore {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    // The directory may predate us with looser bits; addresses and rules are nobody else's business.
    if ((statSync(stateDir).mode & 0o077) !== 0) chmodSync(stateDir, 0o700);
    const path = join(stateDir, 'state.db');
    // The file too (SQLite gives its -wal and -shm files the database file's mode): 0600, whatever the umask.
    closeSync(openSync(path, 'a', 0o600));
    for (const f of [path, `${path}-wal`, `${path}-shm`]) {
      if (existsSync(f) && (statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    }
    return new SqliteStore(path);
  }

  constructor(readonly path: string) {
    try {
      this.db = new Database(path, { fileMustExist: false });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      const check = this.db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check says: ${String(check)}`);
      this.db.exec(`CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                    CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);`);
      const version = this.db.prepare(`SELECT value FROM meta WHERE name = 'schema'`).pluck().get() as string | undefined;
      if (version === undefined) {
        this.db.prepare(`INSERT INTO meta (name, value) VALUES ('schema', ?)`).run(String(SCHEMA_VERSION));
      } else if (Number(version) !== SCHEMA_VERSION) {
        throw new Error(`schema version ${version} is not the ${SCHEMA_VERSION} this portnet understands`);
      }
    } catch (err) {
      throw new StoreUnusable(
        `state database ${path} cannot be used (${(err as Error).message}). portnet will not start with an empty ` +
          `state, because that would hand out addresses that are in use. Stop portnet, move the file aside ` +
          `(with its -wal and -shm files), and restore a backup or start fresh knowing running containers lose their records.`,
      );
    }
    this.getStmt = this.db.prepare('SELECT value FROM kv WHERE key = ?').pluck();
    // Prefix scan on the primary key: key >= prefix AND key < prefix + U+FFFF.
    this.listStmt = this.db.prepare('SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key');
    this.putStmt = this.db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    this.delStmt = this.db.prepare('DELETE FROM kv WHERE key = ?');
  }

  async get<T>(key: string): Promise<T | undefined> {
    const text = this.getStmt.get(key) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as T);
  }

  async list<T>(prefix: string): Promise<Array<[string, T]>> {
    const rows = this.listStmt.all(prefix, prefix + '\uffff') as Array<{ key: string; value: string }>;
    return rows.map((r) => [r.key, JSON.parse(r.value) as T]);
  }

  async commit(ops: StoreOp[], guards: StoreGuard[] = []): Promise<void> {
    const run = this.db.transaction(() => {
      for (const g of guards) {
        const present = this.getStmt.get(g.key) !== undefined;
        if (present !== g.exists) throw new StoreConflict(`${g.key} ${g.exists ? 'does not exist' : 'already exists'}`);
      }
      for (const op of ops) {
        if ('put' in op) this.putStmt.run(op.put, JSON.stringify(op.value));
        else this.delStmt.run(op.delete);
      }
    });
    run.immediate();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
