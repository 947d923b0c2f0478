import { chmod, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Server } from 'node:http';
import type { Express } from 'express';

export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Listens on the Unix socket Docker discovers plugins by. A stale socket from a killed run is
 * replaced; a live one means another portnet is serving, which would corrupt shared state.
 */
export async function listenOnSocket(app: Express, path: string): Promise<Server> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  if (await socketAnswers(path)) throw new Error(`another process is already serving ${path}`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(path, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  // Only root (Docker) may talk to the plugin: it can rewrite the host firewall.
  await chmod(path, 0o660);
  // A client that stalls mid-request must not hold a connection forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return server;
}
