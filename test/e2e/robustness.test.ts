// Robustness end to end (issue 4): never lose an address or a rule. The real plugin, the real engine.
//
//   - a restart does not disturb live traffic (a TCP session through DNAT, new connections, the default deny);
//   - start-up repairs: the nft table deleted, veths deleted (Docker's containers lose eth0), orphan links and
//     routes, endpoints Docker no longer knows (dockerd crashed and skipped DeleteEndpoint);
//   - chaos: SIGKILL at random moments during 200 container create/remove cycles run in parallel;
//   - races: one host port, the last address of a pool, 50 parallel runs with exposures;
//   - least privilege: socket and state modes, no TCP, no shell ever spawned, traffic outside the pools untouched.
//
// Traffic only goes to loopback, to the containers made here and to network namespaces made here.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync, statSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { ipKey, parseIp } from '../../src/ipam/address.js';
import {
  CLI,
  Cleanup,
  containerAddress,
  containerEndpoint,
  createNetwork,
  createOutsideHost,
  docker,
  E2E_DEFAULT_POOL,
  E2E_DRIVER,
  ensureTestbed,
  httpGet,
  inspectNetwork,
  kernelLeftovers,
  pluginState,
  removeContainer,
  removeNetwork,
  run,
  runContainer,
  SCRATCH_DIR,
  startEchoServer,
  startPlugin,
  step,
  tcpProbe,
  TEST_IMAGE,
  RUN_ID,
  RUN_LABEL,
  uniqueName,
  useCleanup,
  type OutsideHost,
  type PluginProcess,
  type PortnetState,
  scoped,
} from './support/index.js';

const EXPOSE = 'com.example.expose';
const cleanup = useCleanup('all');
let plugin: PluginProcess;
let outside: OutsideHost;
/** Where the spawn audit (a preload in the plugin) writes one JSON line per child process. */
const AUDIT = join(SCRATCH_DIR, `spawn-audit-${RUN_ID}.jsonl`);
const AUDIT_HOOK = join(SCRATCH_DIR, `spawn-audit-${RUN_ID}.mjs`);
/** The plugin's environment; settle time is changed per test (the chaos test uses the real 20 s). */
const pluginEnv: Record<string, string> = {
  PORTNET_LOG_FORMAT: 'json',
  PORTNET_RECONCILE_SETTLE_MS: '1500',
  PORTNET_SPAWN_AUDIT: AUDIT,
  NODE_OPTIONS: `--import=${AUDIT_HOOK}`,
};

// Records every child process the plugin starts, before Node starts it. Every way to spawn
// (spawn, exec, execFile, fork and their Sync forms) ends in ChildProcess.prototype.spawn or in
// the *Sync functions; a shell would show up as file /bin/sh with argument -c.
const HOOK_SOURCE = `
import { appendFileSync } from 'node:fs';
import cp from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
const out = process.env.PORTNET_SPAWN_AUDIT;
const record = (how, file, args, options) =>
  appendFileSync(out, JSON.stringify({ how, file, args, shell: options && options.shell !== undefined ? options.shell : null }) + '\\n');
const spawn = cp.ChildProcess.prototype.spawn;
cp.ChildProcess.prototype.spawn = function (options) {
  record('spawn', options.file, options.args, options);
  return spawn.call(this, options);
};
for (const name of ['spawnSync', 'execSync', 'execFileSync']) {
  const original = cp[name];
  cp[name] = function (file, args, options) {
    record(name, file, Array.isArray(args) ? args : [], Array.isArray(args) ? options : args);
    return original.apply(this, arguments);
  };
}
syncBuiltinESMExports();
`;

beforeAll(async () => {
  await ensureTestbed();
  writeFileSync(AUDIT_HOOK, HOOK_SOURCE);
  rmSync(AUDIT, { force: true });
  plugin = await startPlugin({ args: ['--default-pool', E2E_DEFAULT_POOL], logLevel: 'debug', env: pluginEnv }, cleanup);
  cleanup.defer('portnet uninstall', async () => {
    await plugin.kill('SIGTERM');
    await run('node', [CLI, 'uninstall', '--state-dir', plugin.stateDir], { timeoutMs: 30_000 });
  });
  outside = await createOutsideHost('robust', {}, cleanup);
  step(`plugin ${plugin.driver} (log ${plugin.logFile}); outside host ${outside.netns} ${outside.address}, host side ${outside.hostAddress}`);
});

// ------------------------------------------------------------------ helpers


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function network(local: Cleanup, base: string, subnet: string) {
  return createNetwork(uniqueName(base), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet }, local);
}

/** busybox httpd serving /etc on each port (GET /hostname answers), kept in the foreground by sleep. */
const HTTPD = (ports: number[] = [80]) => ['sh', '-c', `${ports.map((p) => `httpd -p ${p} -h /etc`).join(' && ')} && exec sleep 86400`];

/** The log lines of the plugin (JSON) written since `from` characters into its log file. */
function logLines(from = 0): Array<Record<string, unknown>> {
  return plugin
    .logText()
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/** Kill (SIGKILL) or stop, do `meanwhile` while it is down, start again; resolves with the log offset of the new run. */
async function restart(signal: NodeJS.Signals, meanwhile: () => Promise<void> = async () => {}): Promise<number> {
  await plugin.kill(signal);
  const from = plugin.logText().length;
  try {
    await meanwhile();
  } finally {
    // Also when the fault injection failed: the tests after this one need a plugin.
    await plugin.start();
  }
  return from;
}

/** Waits for the background reconciliation with Docker of the run whose log starts at `from`; returns its repairs. */
async function dockerReconciled(from: number, timeoutMs = 60_000): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const lines = logLines(from);
    if (lines.some((l) => l.msg === 'reconciled with Docker')) return lines.filter((l) => typeof l.repair === 'string');
    await sleep(250);
  }
  throw new Error(`no "reconciled with Docker" in the plugin log within ${timeoutMs} ms:\n${plugin.logTail()}`);
}

/** Repairs logged by the run whose log starts at `from` (so far). */
const repairsSince = (from: number) => logLines(from).filter((l) => typeof l.repair === 'string');

interface NftSets {
  /** Elements of each set and map of table inet portnet, each as JSON text. */
  [set: string]: string[];
}

async function nftSets(): Promise<NftSets | undefined> {
  const r = await run('nft', ['-j', 'list', 'table', 'inet', 'portnet'], { allowFail: true });
  if (r.code !== 0) return undefined;
  const out: NftSets = {};
  for (const o of (JSON.parse(r.stdout) as { nftables: Array<Record<string, { name: string; elem?: unknown[] }>> }).nftables) {
    const s = o.set ?? o.map;
    if (s) out[s.name] = (s.elem ?? []).map((e) => JSON.stringify(e)).sort();
  }
  return out;
}

/** The table's rules without handles and counter values: what decides the fate of packets. */
async function nftRules(): Promise<string> {
  const r = await run('nft', ['-j', 'list', 'table', 'inet', 'portnet']);
  const items = (JSON.parse(r.stdout) as { nftables: Array<Record<string, Record<string, unknown>>> }).nftables.filter((o) => !o.metainfo);
  return JSON.stringify(items, (k, v: unknown) => (k === 'handle' ? undefined : k === 'counter' ? 'counter' : v), 1);
}

/** Sum of the packets counted by every counter in portnet's table. */
async function nftCounted(): Promise<number> {
  const r = await run('nft', ['-j', 'list', 'table', 'inet', 'portnet']);
  let n = 0;
  JSON.stringify(JSON.parse(r.stdout), (k, v: unknown) => {
    if (k === 'counter' && v && typeof v === 'object' && 'packets' in v) n += Number((v as { packets: number }).packets);
    return v;
  });
  return n;
}

interface DockerEndpoint {
  endpoint: string;
  address: string;
  container: string;
}

async function dockerEndpoints(networkName: string): Promise<DockerEndpoint[]> {
  const n = await inspectNetwork(networkName);
  return Object.entries(n.Containers ?? {}).map(([container, c]) => ({ endpoint: c.EndpointID, address: c.IPv4Address.split('/')[0]!, container }));
}

/**
 * Docker, portnet's state and the kernel agree, strictly: the same endpoints with the same
 * addresses; no address held twice; the pool holds exactly those addresses; one pn link and one
 * /32 route per endpoint and nothing else; the nft sets hold exactly those endpoints and exposures.
 */
async function expectAgreement(networks: Array<{ name: string; subnet: string }>): Promise<PortnetState> {
  const state = await pluginState(plugin);
  const dockerEps: DockerEndpoint[] = [];
  for (const n of networks) dockerEps.push(...(await dockerEndpoints(n.name)));
  const stateEps = state.endpoints;
  expect(new Map(stateEps.map((e) => [e.id, e.address])), 'endpoints: portnet vs Docker').toEqual(new Map(dockerEps.map((e) => [e.endpoint, e.address])));
  expect(new Set(dockerEps.map((e) => e.address)).size, 'an address held twice').toBe(dockerEps.length);
  for (const n of networks) {
    const pool = state.pools.find((p) => p.pool === n.subnet);
    expect(pool, `pool ${n.subnet}`).toBeDefined();
    const held = pool!.allocated.map((a) => a.address).sort();
    const used = (await dockerEndpoints(n.name)).map((e) => e.address).sort();
    expect(held, `addresses held in ${n.subnet} vs containers on it`).toEqual(used);
  }
  const kernel = await kernelLeftovers();
  expect(kernel.links.filter((l) => l.startsWith('pn')).sort(), 'pn links').toEqual(stateEps.map((e) => e.hostIf).sort());
  const epRoutes = kernel.routes.filter((r) => !r.startsWith('unreachable')).map((r) => r.split(' ').slice(0, 3).join(' ')).sort();
  expect(epRoutes, '/32 routes').toEqual(stateEps.map((e) => `${e.address} dev ${e.hostIf}`).sort());
  const pools = kernel.routes.filter((r) => r.startsWith('unreachable')).map((r) => r.split(' ')[1]).sort();
  expect(pools, 'pool routes').toEqual(state.networks.flatMap((n) => n.pools).sort());
  const sets = await nftSets();
  expect(sets, 'portnet table').toBeDefined();
  expect(sets!.endpoint_sources, 'nft endpoint_sources').toEqual(stateEps.map((e) => JSON.stringify({ concat: [e.hostIf, e.address] })).sort());
  const published = stateEps.flatMap((e) => e.exposures).length;
  expect((sets!.dnat_any ?? []).length + (sets!.dnat_bound ?? []).length, 'nft DNAT elements vs exposures').toBe(published);
  return state;
}

/** Nothing of portnet left: links, routes, set elements, state rows. */
async function expectNothingLeft(): Promise<void> {
  const left = await kernelLeftovers();
  expect(left.links, 'links').toEqual([]);
  expect(left.routes, 'routes').toEqual([]);
  const sets = await nftSets();
  for (const [name, elems] of Object.entries(sets ?? {})) expect(elems, `nft ${name}`).toEqual([]);
  const state = await pluginState(plugin);
  expect([state.pools, state.networks, state.endpoints, state.keys]).toEqual([[], [], [], 0]);
}

/** `docker run -d` that may fail; never throws. */
async function tryRun(args: string[]): Promise<{ ok: boolean; name: string; stderr: string }> {
  const name = uniqueName('r');
  const r = await docker(['run', '-d', '--name', name, '--label', `${RUN_LABEL}=${RUN_ID}`, ...args], { allowFail: true, timeoutMs: 120_000 });
  return { ok: r.code === 0, name, stderr: r.stderr.trim() };
}

function exposeFlag(net: string, expose: string): string[] {
  return ['--network', `name=${net},driver-opt=${EXPOSE}=${expose}`];
}

/** Deterministic randomness for the chaos schedule (the seed is printed, PORTNET_CHAOS_SEED replays it). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------ tests

describe('portnet survives crashes, restarts and races', () => {
  it('a restart (SIGKILL) disturbs no live traffic: a TCP session through DNAT, new connections and the default deny hold throughout', () =>
    scoped(async (local) => {
      const net = await network(local, 'live', '198.18.40.0/24');
      const c = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: '18040:80 18047:7' } }, cmd: HTTPD([80, 8081]) }, local);
      const address = await containerAddress(c.name, net.name);
      const echo = await startEchoServer({ container: c.name }, 'tcp', 7);
      local.defer('stop echo server', () => echo.stop());
      expect((await httpGet(outside, outside.hostAddress, 18040, '/hostname')).status).toBe(200);
      expect((await tcpProbe(outside, address, 8081, 800)).outcome).not.toBe('open');
      const rulesBefore = await nftRules();

      // One long TCP session from the outside host through portnet's DNAT, a line every 50 ms.
      const session = spawn('ip', ['netns', 'exec', outside.netns, 'socat', '-', `TCP4:${outside.hostAddress}:18047`], { stdio: ['pipe', 'pipe', 'pipe'] });
      local.defer('stop the TCP session', () => {
        if (session.exitCode === null && session.signalCode === null) session.kill('SIGKILL');
      });
      let sessionError = '';
      session.stderr.on('data', (d: Buffer) => (sessionError += d.toString()));
      const echoed: Array<{ n: number; at: number }> = [];
      let buffer = '';
      session.stdout.on('data', (d: Buffer) => {
        buffer += d.toString();
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          echoed.push({ n: Number(buffer.slice(0, nl)), at: Date.now() });
          buffer = buffer.slice(nl + 1);
        }
      });
      let sent = 0;
      const ticker = setInterval(() => session.stdin.write(`${sent++}\n`), 50);
      // New connections all along: the exposed port must always open, the unexposed one never.
      const probes: Array<{ exposed: string; unexposed: string; at: number }> = [];
      let probing = true;
      const prober = (async () => {
        while (probing) {
          const [a, b] = await Promise.all([tcpProbe(outside, outside.hostAddress, 18040, 1000), tcpProbe(outside, address, 8081, 400)]);
          probes.push({ exposed: a.outcome, unexposed: b.outcome, at: Date.now() });
        }
      })();
      try {
        await sleep(1500);
        step('SIGKILL the plugin with traffic flowing; 2 s down; start again');
        const from = await restart('SIGKILL', () => sleep(2000));
        await dockerReconciled(from);
        await sleep(1500);
        expect(repairsSince(from), 'a healthy host needs no repair').toEqual([]);
      } finally {
        clearInterval(ticker);
        probing = false;
        await prober;
      }
      await sleep(500);
      session.stdin.end();
      expect(sessionError, 'the session never failed').toBe('');
      expect(echoed.map((e) => e.n), 'every line echoed, in order, over one connection').toEqual([...Array(sent).keys()]);
      const gaps = echoed.slice(1).map((e, i) => e.at - echoed[i]!.at);
      expect(Math.max(...gaps), 'longest silence on the session (ms)').toBeLessThan(1000);
      expect(probes.length).toBeGreaterThan(10);
      expect(probes.filter((p) => p.exposed !== 'open'), 'new connections to the exposure that failed').toEqual([]);
      expect(probes.filter((p) => p.unexposed === 'open'), 'connections to an unexposed port that got through').toEqual([]);
      // The table was replaced in one transaction by the very same rules (handles and counters aside).
      expect(await nftRules()).toEqual(rulesBefore);
    }));

  it("puts back portnet's nft table after it was deleted while portnet was down", () =>
    scoped(async (local) => {
      const net = await network(local, 'flush', '198.18.41.0/24');
      const c = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: '18041:80' } }, cmd: HTTPD([80, 8081]) }, local);
      const address = await containerAddress(c.name, net.name);
      const from = await restart('SIGKILL', async () => {
        // `nft flush ruleset` would take everyone's rules on a shared host; delete portnet's table only.
        await run('nft', ['delete', 'table', 'inet', 'portnet']);
        expect((await tcpProbe(outside, address, 8081, 800)).outcome, 'without the table nothing denies').toBe('open');
      });
      expect(repairsSince(from).map((r) => r.repair)).toEqual(['firewall-missing']);
      expect((await httpGet(outside, outside.hostAddress, 18041, '/hostname')).status).toBe(200);
      expect((await tcpProbe(outside, address, 8081, 800)).outcome, 'the default deny is back').not.toBe('open');
      await expectAgreement([{ name: net.name, subnet: '198.18.41.0/24' }]);
    }));

  it('re-creates deleted veths inside running containers, and removes orphan links and routes (reboot-like damage)', () =>
    scoped(async (local) => {
      const net = await network(local, 'veth', '198.18.42.0/24');
      const a = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: '18042:80' } }, cmd: HTTPD() }, local);
      const b = await runContainer({ network: net.name, cmd: HTTPD() }, local);
      const [addrA, addrB] = [await containerAddress(a.name, net.name), await containerAddress(b.name, net.name)];
      const orphan = `pn${randomBytes(6).toString('hex').slice(0, 11)}`;
      const from = await restart('SIGKILL', async () => {
        // Every pn veth and every portnet route gone (the containers lose eth0), plus leftovers nobody owns.
        for (const l of (await kernelLeftovers()).links.filter((n) => n.startsWith('pn'))) await run('ip', ['link', 'del', l]);
        await run('ip', ['route', 'flush', 'proto', '91']);
        await run('ip', ['link', 'add', orphan, 'type', 'veth', 'peer', 'name', `pc${orphan.slice(2)}`]);
        await run('ip', ['link', 'set', orphan, 'up']);
        await run('ip', ['route', 'add', '198.18.42.250/32', 'dev', orphan, 'proto', '91']);
        await run('ip', ['route', 'add', 'unreachable', '198.18.77.0/24', 'metric', '3999', 'proto', '91']);
        expect((await run('docker', ['exec', a.name, 'ip', '-o', 'link'])).stdout).not.toMatch(/eth0/);
      });
      const repairs = repairsSince(from).map((r) => r.repair).sort();
      expect(repairs).toEqual(['orphan-link', 'orphan-pool-route', 'pool-route-missing', 'veth-restored', 'veth-restored']);
      // Same addresses, reachable again, exposure included.
      expect(await containerAddress(a.name, net.name)).toBe(addrA);
      expect((await run('docker', ['exec', a.name, 'ip', '-4', '-o', 'addr', 'show', 'eth0'])).stdout).toContain(`inet ${addrA}/32`);
      expect((await run('docker', ['exec', b.name, 'ip', 'route'])).stdout).toMatch(/default via 169\.254\.1\.1 dev eth0/);
      expect((await httpGet('host', addrB, 80, '/hostname')).status).toBe(200);
      expect((await httpGet(outside, outside.hostAddress, 18042, '/hostname')).status).toBe(200);
      expect((await run('docker', ['exec', b.name, 'wget', '-q', '-O', '-', `http://${addrA}/hostname`])).stdout.trim()).toBe(a.id.slice(0, 12));
      await dockerReconciled(from);
      await expectAgreement([{ name: net.name, subnet: '198.18.42.0/24' }]);
    }));

  it('releases endpoints Docker no longer knows (dockerd crashed and skipped DeleteEndpoint): address, rules, veth, host port', () =>
    scoped(async (local) => {
      const subnet = '198.18.43.0/24';
      const net = await network(local, 'gone', subnet);
      const keep = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: '18043:80' } }, cmd: HTTPD() }, local);
      const ghostId = randomBytes(32).toString('hex');
      const ghostAddress = '198.18.43.200';
      const hostIf = `pn${ghostId.slice(0, 11)}`;
      const from = await restart('SIGKILL', async () => {
        // What a dockerd crash leaves: portnet still holds an endpoint (with an exposure and a veth)
        // and its address, and Docker's store has no trace of it.
        const db = new Database(join(plugin.stateDir, 'state.db'));
        try {
          const model = JSON.parse((db.prepare(`SELECT value FROM kv WHERE key LIKE 'ep/%'`).pluck().get() as string) ?? 'null') as Record<string, unknown>;
          const exposure = { hostPort: 18044, hostPortEnd: 18044, containerPort: 80, containerPortEnd: 80, proto: 'tcp', origin: 'option' };
          const exposures = [{ requested: exposure, resolved: exposure }];
          const ghost = { ...model, id: ghostId, hostIf, peerIf: `pc${ghostId.slice(0, 11)}`, address: ghostAddress, sandboxKey: '/var/run/docker/netns/ghost0000000', exposures };
          db.prepare('INSERT INTO kv (key, value) VALUES (?, ?)').run(`ep/${ghostId}`, JSON.stringify(ghost));
          db.prepare('INSERT INTO kv (key, value) VALUES (?, ?)').run(`alloc/${subnet}/${ipKey(parseIp(ghostAddress, 'a'))}`, JSON.stringify({ poolId: subnet, address: ghostAddress, kind: 'address' }));
        } finally {
          db.close();
        }
        await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', `pc${ghostId.slice(0, 11)}`]);
        await run('ip', ['link', 'set', hostIf, 'up']);
        await run('ip', ['route', 'add', `${ghostAddress}/32`, 'dev', hostIf, 'proto', '91', 'scope', 'link']);
      });
      expect(repairsSince(from), 'the ghost looks healthy to the kernel check').toEqual([]);
      // Until Docker has been read, the ghost is kept (it could be a docker run in progress)...
      const before = await pluginState(plugin);
      expect(before.endpoints.map((e) => e.address)).toContain(ghostAddress);
      // ...then released, with its address, its rules, its veth and its host port.
      const repairs = await dockerReconciled(from);
      expect(repairs.map((r) => r.repair).sort()).toEqual(['address-unknown-to-docker', 'endpoint-unknown-to-docker']);
      expect(repairs.find((r) => r.repair === 'endpoint-unknown-to-docker')!.msg).toContain(ghostAddress);
      expect((await kernelLeftovers()).links).not.toContain(hostIf);
      const state = await expectAgreement([{ name: net.name, subnet }]);
      expect(state.endpoints.map((e) => e.address)).toEqual([await containerAddress(keep.name, net.name)]);
      const again = await tryRun([...exposeFlag(net.name, '18044:80'), '--ip', ghostAddress, TEST_IMAGE, ...HTTPD()]);
      local.defer(`rm ${again.name}`, () => removeContainer(again.name));
      expect(again, again.stderr).toMatchObject({ ok: true });
    }));

  it('races: one host port, the last address of a pool — exactly one winner, every loser a clear error, nothing half-made', () =>
    scoped(async (local) => {
      const port = await network(local, 'port', '198.18.46.0/24');
      const contenders = await Promise.all(Array.from({ length: 8 }, () => tryRun([...exposeFlag(port.name, '18046:80'), TEST_IMAGE, ...HTTPD()])));
      for (const c of contenders) local.defer(`rm ${c.name}`, () => removeContainer(c.name));
      expect(contenders.filter((c) => c.ok), 'winners of host port 18046').toHaveLength(1);
      for (const c of contenders.filter((x) => !x.ok)) expect(c.stderr).toMatch(/host port 18046\/tcp on all addresses is already published by endpoint [0-9a-f]{12}/);
      for (const c of contenders.filter((x) => !x.ok)) await removeContainer(c.name);
      expect((await httpGet(outside, outside.hostAddress, 18046, '/hostname')).body.trim()).toBe(
        (await run('docker', ['inspect', '-f', '{{.Id}}', contenders.find((c) => c.ok)!.name])).stdout.trim().slice(0, 12),
      );

      const small = await network(local, 'last', '198.18.47.0/29');
      for (let i = 0; i < 5; i++) await runContainer({ network: small.name }, local);
      const last = await Promise.all(Array.from({ length: 6 }, () => tryRun(['--network', small.name, TEST_IMAGE, 'sleep', '86400'])));
      for (const c of last) local.defer(`rm ${c.name}`, () => removeContainer(c.name));
      expect(last.filter((c) => c.ok), 'winners of the last address').toHaveLength(1);
      for (const c of last.filter((x) => !x.ok)) expect(c.stderr).toContain('pool 198.18.47.0/29 is exhausted: all 6 addresses are in use');
      for (const c of last.filter((x) => !x.ok)) await removeContainer(c.name);
      await expectAgreement([
        { name: port.name, subnet: '198.18.46.0/24' },
        { name: small.name, subnet: '198.18.47.0/29' },
      ]);
    }));

  it('50 parallel docker runs with exposures: each succeeds or fails cleanly, and every exposure that was made works', () =>
    scoped(async (local) => {
      const subnet = '198.18.52.0/24';
      const net = await network(local, 'fifty', subnet);
      const t0 = Date.now();
      const runs = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          tryRun([...exposeFlag(net.name, `${18500 + i}:80`), ...(i % 5 === 0 ? ['-p', `${18600 + i}:80`, '-p', '80'] : []), TEST_IMAGE, ...HTTPD()]),
        ),
      );
      for (const r of runs) local.defer(`rm ${r.name}`, () => removeContainer(r.name));
      step(`50 parallel runs: ${runs.filter((r) => r.ok).length} started in ${Date.now() - t0} ms`);
      for (const r of runs.filter((x) => !x.ok)) {
        step(`  failed: ${r.stderr}`);
        await removeContainer(r.name);
      }
      const state = await expectAgreement([{ name: net.name, subnet }]);
      expect(runs.filter((r) => r.ok).length, 'on an idle host all 50 start').toBeGreaterThanOrEqual(45);
      const byPort = new Map(runs.map((r, i) => [18500 + i, r]));
      for (const [p, r] of byPort) {
        if (!r.ok) continue;
        expect((await httpGet(outside, outside.hostAddress, p, '/hostname', 4000)).status, `exposure ${p}`).toBe(200);
      }
      expect(state.endpoints.flatMap((e) => e.exposures).length).toBe(runs.reduce((n, r, i) => n + (r.ok ? (i % 5 === 0 ? 3 : 1) : 0), 0));
    }));

  it(
    'chaos: SIGKILL at random moments during 200 create/remove cycles (5 in parallel) — addresses kept, exposures work, nothing held twice, nothing left',
    () =>
      scoped(async (local) => {
        const seed = Number(process.env.PORTNET_CHAOS_SEED ?? Date.now() % 1e9);
        const random = rng(seed);
        step(`chaos seed ${seed} (PORTNET_CHAOS_SEED=${seed} replays the schedule)`);
        pluginEnv.PORTNET_RECONCILE_SETTLE_MS = '20000';
        const subnet = '198.18.56.0/22';
        const net = await network(local, 'chaos', subnet);
        const nets = [{ name: net.name, subnet }];
        interface Kept {
          name: string;
          address: string;
          port: number;
          endpoint: string;
        }
        const kept: Kept[] = [];
        const keep = async (name: string, port: number) =>
          kept.push({ name, port, address: await containerAddress(name, net.name), endpoint: await containerEndpoint(name, net.name) });
        for (let i = 0; i < 4; i++) {
          const c = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: `${18700 + i}:80` } }, cmd: HTTPD() }, local);
          await keep(c.name, 18700 + i);
        }

        let cycles = 0;
        let failedRuns = 0;
        const failures: string[] = [];
        let kills = 0;
        let done = false;
        const worker = async (w: number) => {
          for (let k = 0; k < 40; k++) {
            const cycle = cycles++;
            const port = 20000 + cycle;
            const r = await tryRun([...exposeFlag(net.name, `${port}:80`), TEST_IMAGE, ...HTTPD()]);
            local.defer(`rm ${r.name}`, () => removeContainer(r.name));
            if (!r.ok) {
              failedRuns++;
              failures.push(r.stderr.split('\n').at(-1)!.slice(0, 200));
              await removeContainer(r.name).catch(() => {});
              continue;
            }
            // Every 25th container stays until the end, the others are removed at once.
            if (cycle % 25 === 7) await keep(r.name, port);
            else {
              const rm = await docker(['rm', '-f', r.name], { allowFail: true });
              if (rm.code !== 0) failures.push(`rm: ${rm.stderr.trim().slice(0, 200)}`);
            }
            if (w === 0 && cycle % 20 === 0) step(`chaos: ${cycles} cycles, ${kills} kills, ${failedRuns} failed runs`);
          }
        };
        const killer = (async () => {
          while (!done) {
            await sleep(1500 + random() * 3500);
            if (done) break;
            await plugin.kill('SIGKILL');
            kills++;
            await sleep(random() * 2500);
            await plugin.start();
          }
        })();
        const t0 = Date.now();
        await Promise.all([0, 1, 2, 3, 4].map(worker));
        done = true;
        await killer;
        step(`chaos: ${cycles} cycles in ${Math.round((Date.now() - t0) / 1000)} s, ${kills} kills, ${failedRuns} failed runs`);
        for (const f of [...new Set(failures)].slice(0, 10)) step(`  ${f}`);
        expect(cycles).toBe(200);
        expect(kills, 'kills during the cycles').toBeGreaterThanOrEqual(5);

        // One more restart, then let the reconciliation with Docker run (20 s settle) and check strictly.
        const from = await restart('SIGKILL');
        const repairs = await dockerReconciled(from, 120_000);
        step(`final reconciliation: ${repairs.length} repairs ${JSON.stringify(repairs.map((r) => r.repair))}`);
        const state = await expectAgreement(nets);
        for (const k of kept) {
          expect(await containerAddress(k.name, net.name), `${k.name} kept its address`).toBe(k.address);
          expect(state.endpoints.find((e) => e.id === k.endpoint)?.address, `${k.name} in portnet's state`).toBe(k.address);
          expect((await httpGet(outside, outside.hostAddress, k.port, '/hostname', 4000)).status, `${k.name}'s exposure ${k.port}`).toBe(200);
          expect((await httpGet('host', k.address, 80, '/hostname', 4000)).status, `${k.name} at ${k.address}`).toBe(200);
        }
        expect(kept.length).toBeGreaterThanOrEqual(4 + 8 - failedRuns);

        // Everything removed: nothing of portnet is left.
        const names = (await docker(['ps', '-aq', '--filter', `label=${RUN_LABEL}=${RUN_ID}`])).stdout.split('\n').filter(Boolean);
        if (names.length > 0) await docker(['rm', '-f', ...names]);
        await removeNetwork(net.name);
        pluginEnv.PORTNET_RECONCILE_SETTLE_MS = '1500';
      }),
    900_000,
  );

  it('once everything is removed, no link, route, rule, set element or state row is left — also across a restart', async () => {
    const names = (await docker(['ps', '-aq', '--filter', `label=${RUN_LABEL}=${RUN_ID}`])).stdout.split('\n').filter(Boolean);
    if (names.length > 0) await docker(['rm', '-f', ...names]);
    await expectNothingLeft();
    const from = await restart('SIGKILL');
    await dockerReconciled(from);
    expect(repairsSince(from)).toEqual([]);
    await expectNothingLeft();
  });

  it('least privilege: socket 0660, state 0700, no TCP or UDP socket, no shell ever spawned', async () => {
    expect(statSync(plugin.socket).mode & 0o777, 'socket mode').toBe(0o660);
    expect(statSync(plugin.stateDir).mode & 0o777, 'state dir mode').toBe(0o700);
    for (const f of readdirSync(plugin.stateDir)) expect(statSync(join(plugin.stateDir, f)).mode & 0o077, `${f}: nothing for group and others`).toBe(0);

    const pid = plugin.pid!;
    const inodes = new Set(
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter((x): x is string => x !== undefined),
    );
    const inet: string[] = [];
    for (const table of ['tcp', 'tcp6', 'udp', 'udp6', 'raw', 'raw6']) {
      for (const line of readFileSync(`/proc/net/${table}`, 'utf8').split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length > 9 && inodes.has(cols[9]!)) inet.push(`${table} ${line.trim()}`);
      }
    }
    expect(inet, "the plugin's IP sockets").toEqual([]);
    // Not vacuous: the plugin's listening Unix socket is among the sockets looked at.
    const unix = readFileSync('/proc/net/unix', 'utf8').split('\n').filter((l) => l.endsWith(plugin.socket));
    expect(unix.some((l) => inodes.has(l.trim().split(/\s+/)[6]!)), 'the plugin socket is one of its fds').toBe(true);

    // Every child process of every plugin run in this file (the chaos test alone made hundreds).
    expect(existsSync(AUDIT), 'the spawn audit ran').toBe(true);
    const spawned = readFileSync(AUDIT, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { how: string; file: string; args: string[]; shell: unknown });
    const programs = new Set(spawned.map((s) => s.file));
    step(`spawn audit: ${spawned.length} child processes: ${[...programs].join(', ')}`);
    for (const p of ['ip', 'nft', 'iptables', 'nsenter']) expect([...programs], `${p} was run`).toContain(p);
    const shells = spawned.filter((s) => /(^|\/)(sh|bash|dash|zsh|ash|busybox)$/.test(s.file) || s.args.includes('-c') || (s.shell !== null && s.shell !== false));
    expect(shells, 'children that are shells').toEqual([]);
    // ip6tables: DOCKER-USER for IPv6 where Docker manages it; conntrack: UDP exposure changes.
    const known = ['ip', 'nft', 'iptables', 'ip6tables', 'nsenter', 'conntrack'];
    expect([...programs].filter((p) => !known.includes(p)), 'programs outside the known set').toEqual([]);
  });

  it("least privilege: traffic between two namespaces outside the pools passes unchanged with portnet's table loaded", () =>
    scoped(async (local) => {
      // A live table with an endpoint, so that there are rules to (not) match.
      const net = await network(local, 'quiet', '198.18.53.0/24');
      const c = await runContainer({ network: net.name, cmd: HTTPD([80, 8081]) }, local);
      const address = await containerAddress(c.name, net.name);
      const a = await createOutsideHost('quieta', { address: '198.51.100.242', routes: ['198.51.100.246/32', '198.18.0.0/15'] }, local);
      const b = await createOutsideHost('quietb', { address: '198.51.100.246', routes: ['198.51.100.242/32'] }, local);
      // Docker's FORWARD policy is DROP: let a <-> b through DOCKER-USER for this test only.
      const rules = [
        ['-i', a.hostLink, '-o', b.hostLink, '-m', 'comment', '--comment', 'portnet-testbed-quiet', '-j', 'ACCEPT'],
        ['-i', b.hostLink, '-o', a.hostLink, '-m', 'comment', '--comment', 'portnet-testbed-quiet', '-j', 'ACCEPT'],
      ];
      for (const r of rules) {
        await run('iptables', ['-w', '5', '-I', 'DOCKER-USER', ...r]);
        local.defer('drop DOCKER-USER accept', () => run('iptables', ['-w', '5', '-D', 'DOCKER-USER', ...r]));
      }
      const server = b.spawn('node', [
        '-e',
        "require('net').createServer((s) => s.end(s.remoteAddress + ' ' + s.remotePort + '\\n')).listen(9999, '198.51.100.246', () => console.log('ready'))",
      ]);
      await new Promise<void>((resolve, reject) => {
        server.stdout!.once('data', () => resolve());
        server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      });

      const counted = await nftCounted();
      const rulesBefore = await nftRules();
      for (let i = 0; i < 5; i++) {
        const r = await a.exec('socat', ['-T2', '-', 'TCP4:198.51.100.246:9999,bind=198.51.100.242:' + (41000 + i)], { allowFail: true });
        // The server sees the client's own address and port: no NAT touched the flow.
        expect(r.stdout.trim(), r.stderr).toBe(`198.51.100.242 ${41000 + i}`);
      }
      const ping = await a.exec('busybox', ['ping', '-c', '3', '-W', '2', '198.51.100.246'], { allowFail: true });
      expect(ping.stdout, ping.stderr).toMatch(/3 packets received/);
      expect(ping.stdout, 'one routed hop: TTL 64 - 1').toMatch(/ttl=63/);
      expect(await nftCounted(), "packets counted by portnet's rules").toBe(counted);
      expect(await nftRules()).toEqual(rulesBefore);
      // Control: the same namespace reaching into a pool is filtered (and counted) by the same table.
      expect((await tcpProbe(a, address, 8081, 800)).outcome).not.toBe('open');
      expect(await nftCounted()).toBeGreaterThan(counted);
    }));
});
