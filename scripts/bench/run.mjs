#!/usr/bin/env node
// portnet benchmarks. Run as root on the test machine; never part of `npm test`.
//
//   node scripts/bench/run.mjs [lifecycle|control|firewall|datapath|ipam|all] [options]
//   node scripts/bench/run.mjs build NAME REF [--overlay PATH]...   build git REF into build/bench/NAME/dist
//
// Options:
//   --cli PATH            plugin build to measure (default dist/cli.js, built if missing)
//   --baseline-cli PATH   a second build for control/firewall to compare with, alternated (e.g. one
//                         made by `build before HEAD`)
//   --quick               small counts, to check that everything runs (numbers mean little)
//   --n N                 lifecycle: containers per side (default 50)
//   --sizes A,B,C         control/firewall: existing exposures (default 10,1000,10000)
//   --iterations K        control/firewall: measured add/remove cycles per size (default 30)
//   --rounds R --seconds S   datapath: rounds of every path, seconds per measurement (default 5, 5)
//   --addresses N         ipam: stop after N addresses instead of the whole /16
//   --no-lock             do not take the host-wide test lock (/tmp/portnet-e2e.lock) per benchmark
//
// Every benchmark that starts portnet or touches docker, nft, iptables or links runs under the lock
// (`flock /tmp/portnet-e2e.lock`), one benchmark per hold. Raw results go to bench-results/.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LOCK, REPO, machineInfo, progress, requireRoot, resolveCli, run, writeResults } from './lib/common.mjs';

const BENCHES = ['lifecycle', 'control', 'firewall', 'datapath', 'ipam'];

function parseArgs(argv) {
  const opts = { positional: [], overlay: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--cli': opts.cli = value(); break;
      case '--baseline-cli': opts.baselineCli = value(); break;
      case '--quick': opts.quick = true; break;
      case '--n': opts.n = Number(value()); break;
      case '--sizes': opts.sizes = value().split(',').map(Number); break;
      case '--iterations': opts.iterations = Number(value()); break;
      case '--rounds': opts.rounds = Number(value()); break;
      case '--seconds': opts.seconds = Number(value()); break;
      case '--addresses': opts.addresses = Number(value()); break;
      case '--overlay': opts.overlay.push(value()); break;
      case '--no-lock': opts.noLock = true; break;
      case '--locked': opts.locked = true; break;
      default:
        if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
        opts.positional.push(a);
    }
  }
  for (const k of ['n', 'iterations', 'rounds', 'seconds', 'addresses']) {
    if (opts[k] !== undefined && !(Number.isInteger(opts[k]) && opts[k] > 0)) throw new Error(`--${k} must be a positive whole number`);
  }
  if (opts.sizes && !opts.sizes.every((s) => Number.isInteger(s) && s >= 0 && s <= 60000)) throw new Error('--sizes must be whole numbers up to 60000');
  return opts;
}

/** git archive REF (src, tsconfig, package.json) + overlaid work-tree paths, compiled into build/bench/NAME/dist. */
async function build(name, ref, overlay) {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`bad build name ${name}`);
  const dir = join(REPO, 'build/bench', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tar = join(dir, 'src.tar');
  await run('git', ['-C', REPO, 'archive', '--format=tar', '-o', tar, ref, '--', 'src', 'tsconfig.json', 'package.json']);
  await run('tar', ['-xf', tar, '-C', dir]);
  rmSync(tar);
  for (const path of overlay) {
    const from = resolve(REPO, path);
    if (!from.startsWith(REPO + '/') || !existsSync(from)) throw new Error(`overlay ${path} is not a path in the work tree`);
    cpSync(from, join(dir, from.slice(REPO.length + 1)), { recursive: true });
  }
  progress(`build ${name}: ${ref}${overlay.length ? ` + ${overlay.join(' ')}` : ''} → ${dir}/dist`);
  await run(join(REPO, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { timeoutMs: 600_000 });
  const cli = join(dir, 'dist/cli.js');
  process.stdout.write(`${cli}\n`);
  return cli;
}

async function runOne(name, opts) {
  const cli = await resolveCli(opts.cli);
  const baselineCli = opts.baselineCli ? resolve(opts.baselineCli) : undefined;
  const machine = await machineInfo();
  let result;
  const q = opts.quick;
  switch (name) {
    case 'lifecycle': {
      const { lifecycleBench } = await import('./lifecycle.mjs');
      result = await lifecycleBench({ cli, n: opts.n ?? (q ? 4 : 50) });
      break;
    }
    case 'control': {
      const { controlBench } = await import('./control.mjs');
      result = await controlBench({ cli, baselineCli, sizes: opts.sizes ?? (q ? [10, 200] : [10, 1000, 10000]), iterations: opts.iterations ?? (q ? 4 : 30) });
      break;
    }
    case 'firewall': {
      const { firewallBench } = await import('./firewall.mjs');
      result = await firewallBench({ cli, baselineCli, sizes: opts.sizes ?? (q ? [10, 200] : [10, 1000, 10000]), iterations: opts.iterations ?? (q ? 4 : 30) });
      break;
    }
    case 'datapath': {
      const { datapathBench } = await import('./datapath.mjs');
      result = await datapathBench({ cli, rounds: opts.rounds ?? (q ? 1 : 5), seconds: opts.seconds ?? (q ? 2 : 5) });
      break;
    }
    case 'ipam': {
      const { ipamBench } = await import('./ipam.mjs');
      result = await ipamBench({ cli, addresses: opts.addresses ?? (q ? 2000 : undefined), restarts: q ? 2 : 5 });
      break;
    }
    default:
      throw new Error(`unknown benchmark ${name}`);
  }
  const { markdown, ...raw } = result;
  const header = [
    `### ${name} (${machine.date})`,
    '',
    `Machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.free.split('\n')[1]?.split(/\s+/)[1] ?? '?'} MiB RAM, ${machine.uname}`,
    `Node ${machine.node}, ${machine.nft}, ${machine.iptables}, Docker ${machine.docker}; portnet ${machine.git}`,
    `Plugin build: ${cli}${baselineCli ? `; baseline: ${baselineCli}` : ''}`,
    '',
  ].join('\n');
  const files = writeResults(name, { machine, cli, baselineCli, ...raw }, `${header}\n${markdown}`);
  process.stdout.write(`${header}\n${markdown}\n\n(raw: ${files.json})\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [what = 'all', ...rest] = opts.positional;
  requireRoot();
  if (what === 'build') {
    const [name, ref] = rest;
    if (!name || !ref) throw new Error('usage: run.mjs build NAME REF [--overlay PATH]...');
    await build(name, ref, opts.overlay);
    return;
  }
  const names = what === 'all' ? BENCHES : [what];
  for (const n of names) if (!BENCHES.includes(n)) throw new Error(`unknown benchmark ${n}; one of ${BENCHES.join(', ')}, all`);
  if (opts.locked || opts.noLock) {
    for (const n of names) await runOne(n, opts);
    return;
  }
  // One lock hold per benchmark, so other suites get the machine in between.
  const passOn = process.argv.slice(2).filter((a) => a !== what);
  for (const n of names) {
    progress(`${n}: waiting for ${LOCK}`);
    const r = await new Promise((res) => {
      const child = spawn('flock', [LOCK, process.execPath, join(REPO, 'scripts/bench/run.mjs'), n, ...passOn, '--locked'], { stdio: 'inherit' });
      child.on('exit', (code) => res(code));
    });
    if (r !== 0) throw new Error(`${n} failed (exit ${r})`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
