// A client that stalls mid-request must not block anyone else: not the HTTP server (a connection
// that sends half its headers or half its body), and not the plugin's lock (a body is read in full
// before a serial handler takes the lock). Runs the real socket listener on a temporary path.
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenOnSocket } from '../../../src/server/listen.js';
import { callSocket } from '../../e2e/support/plugin.js';
import { fakePlugin } from '../support/plugin.js';

let dir: string;
let socket: string;
let server: Server;
const stalled: net.Socket[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portnet-slow-'));
  socket = join(dir, 'slow.sock');
  server = await listenOnSocket((await fakePlugin()).app, socket);
});
afterAll(async () => {
  for (const s of stalled) s.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

function stall(text: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket, () => {
      s.write(text, () => resolve(s));
    });
    s.on('error', reject);
    stalled.push(s);
  });
}

function answer(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => {
      text += d.toString();
      if (/\r\n\r\n[\s\S]*\}/.test(text)) resolve(text);
    });
  });
}

describe('stalled clients on the plugin socket', () => {
  it('half a request line, half the headers, half a body (x50 each): other requests, serial ones included, are answered at once', async () => {
    const pool = JSON.stringify({ AddressSpace: '', Pool: '198.18.5.0/24', SubPool: '', Options: {}, V6: false });
    const half = pool.slice(0, 20);
    for (let i = 0; i < 50; i++) {
      await stall('POST /IpamDriver.Requ');
      await stall('POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: plugin\r\nContent-Le');
      await stall(`POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: plugin\r\nContent-Length: ${pool.length}\r\n\r\n${half}`);
    }
    const t0 = Date.now();
    const created = await callSocket(socket, '/IpamDriver.RequestPool', JSON.parse(pool), 2000);
    expect(created.status).toBe(200);
    const net1 = 'ab'.repeat(32);
    const network = await callSocket(socket, '/NetworkDriver.CreateNetwork', { NetworkID: net1, Options: {}, IPv4Data: [{ Pool: '198.18.5.0/24' }], IPv6Data: [] }, 2000);
    expect(network.status).toBe(200);
    const address = await callSocket(socket, '/IpamDriver.RequestAddress', { PoolID: '198.18.5.0/24', Address: '', Options: null }, 2000);
    expect(address.body).toEqual({ Address: '198.18.5.1/32', Data: {} });
    expect(Date.now() - t0).toBeLessThan(2000);

    // A stalled body that finally arrives is handled like any other (here: the pool is taken now).
    const late = stalled[2]!;
    const reply = answer(late);
    late.write(pool.slice(20));
    expect(await reply).toMatch(/^HTTP\/1\.1 500[\s\S]*"Err":"Pool \\"198\.18\.5\.0\/24\\" overlaps pool \\"198\.18\.5\.0\/24\\" that is already in use"/);
  });
});
