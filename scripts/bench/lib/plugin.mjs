// The portnet plugin as a benchmark subject: started from a given build (its dist/cli.js), optionally
// inside a network namespace of the benchmark's own, driven over its Unix socket as Docker drives it.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { progress, sleep, startChild } from './common.mjs';

/** POST a plugin call the way Docker does (no Content-Type); resolves with { status, body, ms }. */
export function callSocket(socket, path, body, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const start = performance.now();
    const req = http.request(
      {
        socketPath: socket,
        path,
        method: 'POST',
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': Buffer.byteLength(data) },
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (raw += c));
        res.on('end', () => {
          const ms = performance.now() - start;
          let parsed = raw;
          try {
            parsed = JSON.parse(raw);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, ms });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** callSocket that throws unless the plugin answered 200. */
export async function call(socket, path, body) {
  const r = await callSocket(socket, path, body);
  if (r.status !== 200) throw new Error(`${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r;
}

export function getState(socket) {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: socket, path: '/portnet/v1/state', timeout: 60_000 }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (raw += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(raw));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
  });
}

/**
 * One plugin process. `netns` runs it inside that namespace (`ip netns exec`, which execs node, so
 * the pid is node's). Docker never sees a socket outside /run/docker/plugins.
 */
export class Plugin {
  constructor({ cli, socket, stateDir, logFile, netns, env = {}, args = [], logLevel = 'info' }) {
    Object.assign(this, { cli, socket, stateDir, logFile, netns, env, args, logLevel });
    this.proc = undefined;
  }

  get pid() {
    return this.proc?.child.pid;
  }

  /** Starts the plugin; resolves with the milliseconds until Plugin.Activate answered. */
  async start(timeoutMs = 120_000) {
    mkdirSync(dirname(this.socket), { recursive: true });
    mkdirSync(dirname(this.logFile), { recursive: true });
    if (existsSync(this.socket)) rmSync(this.socket);
    const fd = openSync(this.logFile, 'a');
    writeSync(fd, `\n==== ${new Date().toISOString()} bench starts ${this.cli}\n`);
    const node = [process.execPath, this.cli, 'serve', '--socket', this.socket, '--state-dir', this.stateDir, '--log-level', this.logLevel, ...this.args];
    const [cmd, ...args] = this.netns ? ['ip', 'netns', 'exec', this.netns, ...node] : node;
    const start = performance.now();
    this.proc = startChild(cmd, args, { stdio: ['ignore', fd, fd], env: this.env });
    closeSync(fd);
    while (performance.now() - start < timeoutMs) {
      if (!this.proc.running) throw new Error(`plugin exited during start-up; log ${this.logFile}:\n${tail(this.logFile)}`);
      try {
        const r = await callSocket(this.socket, '/Plugin.Activate', undefined, 2000);
        if (r.status === 200) return performance.now() - start;
      } catch {
        // not listening yet
      }
      await sleep(5);
    }
    await this.stop('SIGKILL');
    throw new Error(`plugin did not answer within ${timeoutMs} ms; log ${this.logFile}:\n${tail(this.logFile)}`);
  }

  async stop(signal = 'SIGTERM') {
    if (this.proc) await this.proc.stop(signal, 15_000);
  }

  /** Resident set size of the plugin process, in KiB. */
  rssKib() {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  }
}

function tail(file, lines = 30) {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '(no log)';
}

/** `call` → server milliseconds of every answered call in a pino JSON log (lines without `call`/`ms` skipped). */
export function callTimes(logFile, fromByte = 0) {
  const out = new Map();
  const text = readFileSync(logFile, 'utf8').slice(fromByte);
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof rec.call !== 'string' || typeof rec.ms !== 'number' || rec.err !== undefined) continue;
    if (!out.has(rec.call)) out.set(rec.call, []);
    out.get(rec.call).push(rec.ms);
  }
  return out;
}

/** Imports a module of the build that `cli` belongs to (dist/…), so seeded state matches that build. */
export async function importBuild(cli, modulePath) {
  return import(pathToFileURL(join(dirname(cli), modulePath)).href);
}

/**
 * Writes a state database as a plugin of build `cli` would have left it: one network with `pool`,
 * and `count` joined endpoints, each with one exposure `HOSTPORT:80/tcp` (host ports from
 * `firstHostPort`), addresses from the start of the pool. Far faster than making them through the
 * API, and the plugin applies the whole firewall for them when it starts.
 */
export async function seedState(cli, stateDir, { networkId, pool, count, firstHostPort }) {
  const { SqliteStore } = await importBuild(cli, 'state/sqliteStore.js');
  const { keys } = await importBuild(cli, 'state/state.js');
  const { endpointLinkNames } = await importBuild(cli, 'dataplane/links.js');
  const { ipKey, parseIp } = await importBuild(cli, 'ipam/address.js');
  rmSync(stateDir, { recursive: true, force: true });
  const store = SqliteStore.open(stateDir);
  const base = ipToInt(pool.split('/')[0]);
  const ops = [
    {
      put: keys.pool(pool),
      value: { id: pool, addressSpace: 'portnet-local', family: 4, pool, options: {}, carved: false },
    },
    {
      put: keys.network(networkId),
      value: { id: networkId, index: 1, pools: [pool], options: {}, icc: true, masquerade: true, internal: false },
    },
  ];
  for (let i = 0; i < count; i++) {
    const id = endpointId(i);
    const address = intToIp(base + 2 + i);
    const exposure = { hostPort: firstHostPort + i, hostPortEnd: firstHostPort + i, containerPort: 80, containerPortEnd: 80, proto: 'tcp', origin: 'option' };
    ops.push({
      put: keys.alloc(pool, ipKey(parseIp(address, 'address'))),
      value: { poolId: pool, address, kind: 'address' },
    });
    ops.push({
      put: keys.endpoint(id),
      value: {
        id,
        networkId,
        ...endpointLinkNames(id),
        address,
        prefix: 32,
        options: { 'com.example.expose': `${firstHostPort + i}:80` },
        exposures: [{ requested: exposure, resolved: exposure }],
        joined: true,
        sandboxKey: `/var/run/docker/netns/bench${i}`,
      },
    });
  }
  for (let i = 0; i < ops.length; i += 5000) await store.commit(ops.slice(i, i + 5000));
  await store.close();
}

/** A 64-hex endpoint ID whose first 11 characters (the veth name) are unique per `i` and `prefix` (hex). */
export function endpointId(i, prefix = 'b') {
  return `${prefix}${i.toString(16).padStart(11 - prefix.length, '0')}`.padEnd(64, '0');
}

export function ipToInt(ip) {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}

export function intToIp(v) {
  return [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.');
}

export function logSize(file) {
  return existsSync(file) ? readFileSync(file).length : 0;
}

export { progress };
