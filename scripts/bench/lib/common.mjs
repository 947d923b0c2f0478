// Shared pieces of the benchmarks: running programs (argument arrays only, never a shell), timing,
// statistics, progress lines, clean-up on exit, machine facts and result files.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const RESULTS_DIR = join(REPO, 'bench-results');
/** Scratch space of the benchmarks (state dirs, sockets, logs); removed per run. */
export const SCRATCH = '/tmp/portnet-bench';
export const LOCK = process.env.PORTNET_TEST_LOCK ?? '/tmp/portnet-e2e.lock';

const t0 = Date.now();

/** A progress line on stderr: `[bench  12.3s] message`. */
export function progress(message) {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(7);
  process.stderr.write(`[bench ${s}s] ${message}\n`);
}

/**
 * Runs `cmd args…` (no shell) and resolves with { code, stdout, stderr }. Rejects on a non-zero
 * exit unless allowFail; a timeout kills the child (SIGKILL) and counts as a failure.
 */
export function run(cmd, args, opts = {}) {
  const { input, timeoutMs = 120_000, allowFail = false, env } = opts;
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024 * 1024, env: env ? { ...process.env, ...env } : process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        const result = { code, stdout: String(stdout), stderr: String(stderr) };
        if (code !== 0 && !allowFail) {
          reject(new Error(`${[cmd, ...args].join(' ')} failed (${err?.killed ? 'timed out' : `exit ${code}`}): ${String(stderr).trim() || String(stdout).trim().slice(0, 500)}`));
        } else resolvePromise(result);
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

/** Starts a long-running child; stop() ends it (SIGTERM, then SIGKILL) and waits for it. */
export function startChild(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'], env: opts.env ? { ...process.env, ...opts.env } : process.env });
  let output = '';
  child.stdout?.on('data', (d) => (output = (output + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d) => (output = (output + d.toString()).slice(-20_000)));
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  return {
    child,
    exited,
    output: () => output,
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    async stop(signal = 'SIGTERM', graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Milliseconds since `start` (a performance.now() value). */
export const since = (start) => performance.now() - start;

/** Nearest-rank percentile of an unsorted array. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summary(values) {
  return {
    n: values.length,
    median: median(values),
    p95: percentile(values, 95),
    p99: percentile(values, 99),
    min: Math.min(...values),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / (values.length || 1),
  };
}

/** A number for a table: 3 significant digits, no exponent. */
export function num(x, digits = 3) {
  if (!Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const abs = Math.abs(x);
  if (abs >= 10 ** digits) return Math.round(x).toLocaleString('en-US');
  return Number(x.toPrecision(digits)).toString();
}

/** A markdown table from a header row and rows of cells. */
export function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Undo steps run last-in first-out at the end, on failure and on SIGINT/SIGTERM. */
export class Cleanup {
  steps = [];
  defer(what, fn) {
    this.steps.push({ what, fn });
  }
  async run() {
    while (this.steps.length > 0) {
      const s = this.steps.pop();
      try {
        await s.fn();
      } catch (err) {
        progress(`cleanup: ${s.what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

/** Machine facts for the result header. */
export async function machineInfo() {
  const out = async (cmd, args) => (await run(cmd, args, { allowFail: true, timeoutMs: 15_000 })).stdout.trim();
  return {
    date: new Date().toISOString(),
    nproc: await out('nproc', []),
    cpu: (await out('sh', ['-c', 'grep -m1 "model name" /proc/cpuinfo'])).replace(/^model name\s*:\s*/, ''),
    free: await out('free', ['-m']),
    uname: await out('uname', ['-a']),
    node: process.version,
    nft: await out('nft', ['--version']),
    iptables: await out('iptables', ['--version']),
    docker: await out('docker', ['version', '--format', '{{.Server.Version}}']),
    git: (await out('git', ['-C', REPO, 'log', '-1', '--format=%h %s'])) + ((await out('git', ['-C', REPO, 'status', '--porcelain'])) ? ' (work tree has uncommitted changes)' : ''),
  };
}

/** Writes bench-results/<stamp>-<name>.json (raw) and .md (tables); returns the paths. */
export function writeResults(name, data, markdown) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const base = join(RESULTS_DIR, `${stamp}-${name}`);
  writeFileSync(`${base}.json`, JSON.stringify(data, null, 2) + '\n');
  writeFileSync(`${base}.md`, markdown + '\n');
  return { json: `${base}.json`, md: `${base}.md` };
}

export function requireRoot() {
  if (process.getuid?.() !== 0) throw new Error('the benchmarks need root (network namespaces, nft, docker)');
}

/** Installs Debian packages that provide missing programs (`apt-get update` first, once). */
export async function ensurePrograms(programs) {
  const missing = [];
  for (const [program, pkg] of Object.entries(programs)) {
    const r = await run('sh', ['-c', 'command -v "$1"', 'sh', program], { allowFail: true });
    if (r.code !== 0) missing.push(pkg);
  }
  if (missing.length === 0) return;
  progress(`installing ${missing.join(' ')} (apt-get)`);
  await run('apt-get', ['update', '-qq'], { timeoutMs: 600_000 });
  await run('apt-get', ['install', '-y', '-qq', ...new Set(missing)], { timeoutMs: 600_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
}

/** The plugin entry point to benchmark: --cli PATH, else the repo's dist/cli.js (built if missing). */
export async function resolveCli(path) {
  if (path) {
    const abs = resolve(path);
    if (!existsSync(abs)) throw new Error(`${abs} does not exist`);
    return abs;
  }
  const cli = join(REPO, 'dist/cli.js');
  if (!existsSync(cli)) {
    progress('dist/cli.js missing: npm run build');
    await run('npm', ['run', 'build'], { timeoutMs: 600_000 });
  }
  return cli;
}
