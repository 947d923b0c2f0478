// The portnet plugin as a child process for e2e tests.
//
// Interface coded to: `node dist/cli.js serve [--socket PATH] [--state-dir DIR] [--log-level L]`
// (also env PORTNET_SOCKET, PORTNET_STATE_DIR). Docker names a socket plugin after the socket's basename,
// so e2e tests serve on /run/docker/plugins/portnet-e2e.sock and use the driver name `portnet-e2e`
// (network create -d portnet-e2e --ipam-driver portnet-e2e). That keeps a developer's own `portnet`
// plugin out of the way. The plugin must take its driver name from the socket basename (when it looks
// up its networks through the Docker API). Override with PORTNET_E2E_SOCKET (and the entry point with
// PORTNET_E2E_CLI).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import { basename, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import type { Cleanup } from './cleanup.js';
import { REPO_ROOT, SCRATCH_DIR, step } from './bed.js';
import { RUN_ID } from './docker.js';

export const E2E_SOCKET = process.env.PORTNET_E2E_SOCKET ?? '/run/docker/plugins/portnet-e2e.sock';
/** The driver name Docker knows the e2e plugin by. */
export const E2E_DRIVER = basename(E2E_SOCKET, '.sock');
/** The plugin's entry point; PORTNET_E2E_CLI overrides it (e.g. to test another build). */
export const CLI = process.env.PORTNET_E2E_CLI ?? resolve(REPO_ROOT, 'dist/cli.js');

export interface PluginOptions {
  socket?: string;
  /** Default: a fresh temporary directory, removed by destroy(). */
  stateDir?: string;
  logLevel?: string;
  /** Default: .testbed/logs/plugin-<RUN_ID>-<n>.log */
  logFile?: string;
  env?: Record<string, string>;
  /** Extra CLI arguments after `serve …`. */
  args?: string[];
  startTimeoutMs?: number;
}

export interface PluginReply {
  status: number;
  body: unknown;
  raw: string;
}

/** POST a plugin call over a unix socket, the way Docker does it (no Content-Type; empty body if none). */
export function callSocket(socket: string, path: string, body?: unknown, timeoutMs = 5000): Promise<PluginReply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request(
      {
        socketPath: socket,
        path: path.startsWith('/') ? path : `/${path}`,
        method: 'POST',
        headers: { Accept: 'application/vnd.docker.plugins.v1.2+json', 'Content-Length': Buffer.byteLength(data) },
        timeout: timeoutMs,
      },
      (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (raw += c));
        res.on('end', () => {
          let parsed: unknown = raw;
          try {
            parsed = JSON.parse(raw);
          } catch {
            /* keep raw text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, raw });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${path} on ${socket}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

let logSeq = 0;

export class PluginProcess {
  readonly socket: string;
  readonly stateDir: string;
  readonly logFile: string;
  readonly driver: string;
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private readonly ownsStateDir: boolean;

  constructor(private readonly opts: PluginOptions = {}) {
    this.socket = opts.socket ?? E2E_SOCKET;
    this.driver = basename(this.socket, '.sock');
    this.ownsStateDir = opts.stateDir === undefined;
    this.stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'portnet-e2e-state-'));
    logSeq += 1;
    this.logFile = opts.logFile ?? join(SCRATCH_DIR, 'logs', `plugin-${RUN_ID}-${logSeq}.log`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Start `portnet serve` and wait until POST /Plugin.Activate answers 200 on the socket. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`plugin already running (pid ${this.pid})`);
    if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: build first (npm run build)`);
    if (existsSync(this.socket) && (await this.answers())) {
      throw new Error(`something else already serves ${this.socket}; stop it first`);
    }
    mkdirSync(resolve(this.logFile, '..'), { recursive: true });
    mkdirSync(resolve(this.socket, '..'), { recursive: true });
    const fd = openSync(this.logFile, 'a');
    const args = [CLI, 'serve', '--socket', this.socket, '--state-dir', this.stateDir, '--log-level', this.opts.logLevel ?? 'debug', ...(this.opts.args ?? [])];
    writeSync(fd, `\n==== ${new Date().toISOString()} test starts: node ${args.join(' ')}\n`);
    const t0 = Date.now();
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, PORTNET_SOCKET: this.socket, PORTNET_STATE_DIR: this.stateDir, ...this.opts.env },
    });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
    const deadline = t0 + (this.opts.startTimeoutMs ?? 20_000);
    while (Date.now() < deadline) {
      if (!this.running) {
        const e = await this.exited;
        throw new Error(`plugin exited during start-up (code ${e.code}, signal ${e.signal}); log ${this.logFile}:\n${this.logTail()}`);
      }
      if (await this.answers()) {
        step(`plugin: pid ${child.pid} answers on ${this.socket} after ${Date.now() - t0} ms (log ${this.logFile})`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.kill('SIGKILL').catch(() => {});
    throw new Error(`plugin did not answer on ${this.socket} within ${this.opts.startTimeoutMs ?? 20_000} ms; log:\n${this.logTail()}`);
  }

  private async answers(): Promise<boolean> {
    try {
      const r = await callSocket(this.socket, '/Plugin.Activate', undefined, 1000);
      return r.status === 200;
    } catch {
      return false;
    }
  }

  /** Send `signal` and wait for the exit (SIGKILL after timeoutMs). Returns how it ended. */
  async kill(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.child || !this.exited) throw new Error('plugin was never started');
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
      try {
        const e = await this.exited;
        step(`plugin: pid ${this.child.pid} ended after ${signal} (code ${e.code}, signal ${e.signal})`);
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }

  /** kill(signal) then start() again, same socket and state dir. */
  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.kill(signal);
    await this.start();
  }

  /** POST a plugin call to this plugin. */
  call(path: string, body?: unknown, timeoutMs = 5000): Promise<PluginReply> {
    return callSocket(this.socket, path, body, timeoutMs);
  }

  logText(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  logTail(lines = 40): string {
    return this.logText().trimEnd().split('\n').slice(-lines).join('\n');
  }

  /**
   * Stop the process (SIGTERM) if running, remove its socket file if it is left and nobody answers on it
   * (Docker would otherwise keep dialling a dead socket), and remove a state dir this object created.
   * The log stays.
   */
  async destroy(): Promise<void> {
    if (this.running) await this.kill('SIGTERM');
    if (existsSync(this.socket) && !(await this.answers())) rmSync(this.socket, { force: true });
    if (this.ownsStateDir) rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/** Start a plugin; with a Cleanup, destroy() runs after the test(s). */
export async function startPlugin(opts: PluginOptions = {}, cleanup?: Cleanup): Promise<PluginProcess> {
  const p = new PluginProcess(opts);
  cleanup?.defer(`stop plugin on ${p.socket}`, () => p.destroy());
  await p.start();
  return p;
}
