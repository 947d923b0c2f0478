// The managed (v2) plugin end to end: build/plugin (scripts/plugin/build.sh, reused when its inputs did
// not change) installed with `docker plugin create`, configured with `docker plugin set`, enabled, used
// as network and IPAM driver under its full name (`NAME:latest`), disabled, re-created (the upgrade
// path) and removed, leaving nothing behind.
//
// Traffic only goes to the containers made here, to the outside host namespace and to the host side of
// its veth (a local address of the host, where portnet's DNAT applies).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI,
  containerAddress,
  createNetwork,
  createOutsideHost,
  docker,
  httpGet,
  inspectNetwork,
  kernelLeftovers,
  REPO_ROOT,
  removeContainer,
  removeNetwork,
  run,
  runContainer,
  step,
  tcpProbe,
  uniqueName,
  useCleanup,
  ensureTestbed,
  type CreatedContainer,
  type CreatedNetwork,
  type OutsideHost,
  type PortnetState,
} from './support/index.js';

/** The plugin's name; Docker knows the drivers by the full name, tag included. */
const PLUGIN = 'portnet-test/portnet:latest';
const PLUGIN_DIR = resolve(REPO_ROOT, 'build/plugin');
const BUILD_SCRIPT = resolve(REPO_ROOT, 'scripts/plugin/build.sh');
const DOCKERD_LOG = process.env.PORTNET_DOCKERD_LOG ?? '/var/log/portnet-test-dockerd.log';
const SUBNET = '198.18.40.0/24';
/** Set with `docker plugin set` and checked through a network created without --subnet. */
const POOL = '198.18.44.0/22';
const EXPOSE = 'com.example.expose';
/** What a probe that should fail waits; the firewall drops silently. */
const SHUT_MS = 1200;

const cleanup = useCleanup('all');
let stateDir = '';
let pluginId = '';
let outside: OutsideHost;
let net: CreatedNetwork;
let carved: CreatedNetwork;
let web: CreatedContainer & { address: string; hostname: string };

// ------------------------------------------------------------------ helpers

/** scripts/plugin/build.sh with its progress lines passed through as they come. */
function buildPlugin(): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const env = { ...process.env };
    delete env.PORTNET_T0; // the build's own clock
    const child = spawn('bash', [BUILD_SCRIPT], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const relay = (chunk: Buffer): void => {
      const text = chunk.toString();
      tail = (tail + text).slice(-4000);
      for (const line of text.split('\n')) if (line.trim()) step(`  ${line}`);
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`plugin build failed (exit ${code}):\n${tail}`))));
  });
}

async function plugin(args: string[], timeoutMs = 120_000) {
  return docker(['plugin', ...args], { timeoutMs });
}

async function pluginExists(): Promise<boolean> {
  return (await plugin(['inspect', PLUGIN], 15_000).catch(() => null)) !== null;
}

/** Removes the test plugin whatever its state (also a leftover of an interrupted run). */
async function removePlugin(): Promise<void> {
  if (await pluginExists()) await plugin(['rm', '-f', PLUGIN]);
}

interface PluginInspect {
  Id: string;
  Name: string;
  Enabled: boolean;
  Settings: { Env: string[]; Mounts: Array<{ Name: string; Source: string | null }>; Args: string[] };
  Config: {
    Interface: { Types: string[]; Socket: string };
    Network: { Type: string };
    Linux: { Capabilities: string[] };
    Entrypoint: string[];
  };
}

async function inspectPlugin(): Promise<PluginInspect> {
  const [p] = JSON.parse((await plugin(['inspect', PLUGIN])).stdout) as PluginInspect[];
  if (!p) throw new Error(`docker plugin inspect ${PLUGIN}: empty answer`);
  return p;
}

/** The socket Docker dials: the rootfs' /run/docker/plugins is the host's /run/docker/plugins/<id>. */
function hostSocket(id = pluginId): string {
  return `/run/docker/plugins/${id}/portnet.sock`;
}

/** GET /portnet/v1/state from the running plugin, through the host side of its socket. */
function pluginState(): Promise<PortnetState> {
  return new Promise((resolvePromise, reject) => {
    const req = http.get({ socketPath: hostSocket(), path: '/portnet/v1/state', timeout: 5000 }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (raw += c));
      res.on('end', () => {
        try {
          resolvePromise(JSON.parse(raw) as PortnetState);
        } catch (err) {
          reject(new Error(`state answer is not JSON: ${raw.slice(0, 200)} (${String(err)})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('state: no answer in 5 s')));
    req.on('error', reject);
  });
}

/** Networks, pools and endpoints, sorted, without fields that may legitimately change (container names). */
function essence(s: PortnetState) {
  const by = <T>(key: (t: T) => string) => (a: T, b: T) => key(a).localeCompare(key(b));
  return {
    pools: s.pools.map((p) => ({ pool: p.pool, allocated: p.allocated.map((a) => a.address).sort() })).sort(by((p) => p.pool)),
    networks: s.networks.map((n) => ({ id: n.id, pools: n.pools })).sort(by((n) => n.id)),
    endpoints: s.endpoints
      .map((e) => ({ id: e.id, networkId: e.networkId, address: e.address, hostIf: e.hostIf, exposures: e.exposures }))
      .sort(by((e) => e.id)),
  };
}

/** The plugin's process: it runs portnet in a cgroup named after the plugin's ID. */
function pluginPid(): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('/opt/portnet/dist/cli.js') && readFileSync(`/proc/${entry}/cgroup`, 'utf8').includes(pluginId)) return Number(entry);
    } catch {
      /* gone, or a kernel thread */
    }
  }
  throw new Error(`no process of plugin ${pluginId} found`);
}

const CAP = { NET_ADMIN: 12, SYS_MODULE: 16, SYS_PTRACE: 19, SYS_ADMIN: 21 } as const;

function effectiveCaps(pid: number): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no CapEff in /proc/${pid}/status`);
  return BigInt(`0x${m[1]}`);
}

const has = (caps: bigint, bit: number): boolean => ((caps >> BigInt(bit)) & 1n) === 1n;

async function enable(): Promise<void> {
  const t0 = Date.now();
  await plugin(['enable', '--timeout', '60', PLUGIN]);
  pluginId = (await inspectPlugin()).Id;
  step(`plugin enabled in ${Date.now() - t0} ms (id ${pluginId.slice(0, 12)})`);
}

/** The settings a user would give; a re-created plugin needs them again. */
async function configure(): Promise<void> {
  await plugin(['set', PLUGIN, `state.source=${stateDir}`, `PORTNET_DEFAULT_POOL=${POOL}`, 'PORTNET_LOG_LEVEL=debug']);
}

async function create(): Promise<void> {
  const t0 = Date.now();
  await plugin(['create', PLUGIN, PLUGIN_DIR], 300_000);
  step(`docker plugin create ${PLUGIN} in ${Date.now() - t0} ms`);
}

function sysctl(path: string): string {
  return readFileSync(`/proc/sys/net/${path}`, 'utf8').trim();
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const serves = async (port: number, from: Parameters<typeof tcpProbe>[0], ip: string): Promise<boolean> =>
  (await tcpProbe(from, ip, port, SHUT_MS)).outcome === 'open';

// ------------------------------------------------------------------ set-up

beforeAll(async () => {
  await ensureTestbed();
  step('plugin: scripts/plugin/build.sh (skipped when build/plugin matches its inputs)');
  await buildPlugin();
  await removePlugin();
  stateDir = mkdtempSync(join(tmpdir(), 'portnet-plugin-state-'));
  cleanup.defer(`rm -r ${stateDir}`, () => rmSync(stateDir, { recursive: true, force: true }));
  // Last resort after a failed run: a plugin killed while networks existed leaves its rules behind.
  cleanup.defer('portnet uninstall (only if something is left)', async () => {
    const left = await kernelLeftovers();
    const table = await run('nft', ['list', 'table', 'inet', 'portnet'], { allowFail: true });
    if (left.links.length === 0 && left.routes.length === 0 && table.code !== 0) return;
    step(`leftovers after the plugin: ${JSON.stringify(left)}; running portnet uninstall`);
    await run('node', [CLI, 'uninstall', '--state-dir', stateDir, '--socket', join(stateDir, 'none.sock')], { timeoutMs: 30_000 });
  });
  cleanup.defer(`docker plugin rm -f ${PLUGIN}`, removePlugin);
  outside = await createOutsideHost('mplug', {}, cleanup);
  step(`outside host ${outside.netns}: ${outside.address}, host side ${outside.hostAddress}`);
}, 1_200_000);

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail' || !pluginId || !existsSync(DOCKERD_LOG)) return;
  const lines = readFileSync(DOCKERD_LOG, 'utf8').split('\n').filter((l) => l.includes(`plugin=${pluginId}`));
  step(`last plugin log lines (${DOCKERD_LOG}):\n${lines.slice(-40).join('\n')}`);
});

// ------------------------------------------------------------------ the tests

describe('portnet as a managed Docker plugin', () => {
  it('installs from build/plugin, takes its settings from docker plugin set, and runs with the capabilities it asks for', async () => {
    await create();
    const created = await inspectPlugin();
    expect(created.Enabled).toBe(false);
    expect(created.Config.Interface.Types.sort()).toEqual(['docker.ipamdriver/1.0', 'docker.networkdriver/1.0']);
    expect(created.Config.Interface.Socket).toBe('portnet.sock');
    expect(created.Config.Network.Type).toBe('host');
    expect(created.Config.Linux.Capabilities.sort()).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);

    // The state mount's source must exist: Docker does not create it, and enable fails.
    const missing = join(stateDir, 'missing');
    await plugin(['set', PLUGIN, `state.source=${missing}`]);
    const refused = await docker(['plugin', 'enable', '--timeout', '30', PLUGIN], { allowFail: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/no such file or directory/);
    expect((await inspectPlugin()).Enabled).toBe(false);

    await configure();
    const configured = await inspectPlugin();
    expect(configured.Settings.Env).toEqual(expect.arrayContaining([`PORTNET_DEFAULT_POOL=${POOL}`, 'PORTNET_LOG_LEVEL=debug']));
    expect(configured.Settings.Mounts.find((m) => m.Name === 'state')?.Source).toBe(stateDir);
    await enable();

    expect(existsSync(hostSocket())).toBe(true);
    const state = await pluginState();
    expect(essence(state)).toEqual({ pools: [], networks: [], endpoints: [] });
    expect(existsSync(join(stateDir, 'state.db'))).toBe(true);

    // Docker's default set plus what config.json adds; nothing like SYS_MODULE or SYS_PTRACE.
    const caps = effectiveCaps(pluginPid());
    expect(has(caps, CAP.NET_ADMIN)).toBe(true);
    expect(has(caps, CAP.SYS_ADMIN)).toBe(true);
    expect(has(caps, CAP.SYS_MODULE)).toBe(false);
    expect(has(caps, CAP.SYS_PTRACE)).toBe(false);
  });

  it(`serves ${PLUGIN} as network and IPAM driver: an exposed port answers an outside host through the host address, an unexposed one does not`, async () => {
    net = await createNetwork(uniqueName('mplug'), { driver: PLUGIN, ipamDriver: PLUGIN, subnet: SUBNET }, cleanup);
    const c = await runContainer(
      {
        network: { name: net.name, driverOpts: { [EXPOSE]: '80' } },
        cmd: ['sh', '-c', 'httpd -p 80 -h /etc && httpd -p 81 -h /etc && exec sleep 86400'],
      },
      cleanup,
    );
    const address = await containerAddress(c.name, net.name);
    web = { ...c, address, hostname: c.id.slice(0, 12) };
    expect(address.startsWith('198.18.40.')).toBe(true);
    // The host may reach every port: both servers are up before anything is judged shut.
    await until(`httpd on ${address}:80 and :81`, async () => (await serves(80, 'host', address)) && (await serves(81, 'host', address)));

    const got = await httpGet(outside, outside.hostAddress, 80, '/hostname');
    expect(got.status).toBe(200);
    expect(got.body.trim()).toBe(web.hostname);
    expect((await tcpProbe(outside, address, 80, SHUT_MS)).outcome).toBe('open');
    expect((await tcpProbe(outside, outside.hostAddress, 81, SHUT_MS)).outcome).not.toBe('open');
    expect((await tcpProbe(outside, address, 81, SHUT_MS)).outcome).not.toBe('open');

    // The kernel side, made from inside the plugin: veth, /32 route, and the sysctls that Docker's
    // read-only /proc/sys would have refused (written through the sysctl-net mount).
    const ep = (await pluginState()).endpoints.find((e) => e.address === address);
    expect(ep?.hostIf).toMatch(/^pn[0-9a-f]{11}$/);
    const hostIf = ep!.hostIf;
    expect((await kernelLeftovers()).routes).toContainEqual(expect.stringContaining(`${address} dev ${hostIf}`));
    expect(sysctl(`ipv4/conf/${hostIf}/proxy_arp`)).toBe('1');
    expect(sysctl(`ipv4/conf/${hostIf}/route_localnet`)).toBe('1');
    expect(sysctl(`ipv4/neigh/${hostIf}/proxy_delay`)).toBe('0');

    // The Docker API through the docker-socket mount: portnet learns the endpoint's container name.
    await until('the plugin learns the container name from Docker', async () => JSON.stringify(await pluginState()).includes(c.name));

    // Without --subnet, the pool given with `docker plugin set PORTNET_DEFAULT_POOL=…` is carved.
    carved = await createNetwork(uniqueName('mcarve'), { driver: PLUGIN, ipamDriver: PLUGIN }, cleanup);
    expect((await inspectNetwork(carved.name)).IPAM.Config?.[0]?.Subnet).toMatch(/^198\.18\.4[4-7]\.0\/24$/);
  });

  it('keeps its state on the host mount across disable/enable and across rm -f/create (the upgrade path); a lost veth is re-created', async () => {
    const before = essence(await pluginState());
    expect(before.endpoints).toHaveLength(1);

    // Docker refuses to disable a plugin that networks use; -f does it, as an upgrade must.
    const refused = await docker(['plugin', 'disable', PLUGIN], { allowFail: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/in use/);
    await plugin(['disable', '-f', PLUGIN]);
    expect((await inspectPlugin()).Enabled).toBe(false);
    // portnet's rules stay in the kernel while it is down: the exposure still answers.
    expect((await httpGet(outside, outside.hostAddress, 80, '/hostname')).status).toBe(200);
    await enable();
    expect(essence(await pluginState())).toEqual(before);

    // The upgrade path without a registry: remove the plugin, create it again from build/plugin.
    const oldId = pluginId;
    await plugin(['disable', '-f', PLUGIN]);
    await plugin(['rm', '-f', PLUGIN]);
    expect(await pluginExists()).toBe(false);
    // While no plugin runs, the container side of the endpoint's veth disappears with its host side.
    await run('ip', ['link', 'del', before.endpoints[0]!.hostIf]);
    await create();
    await configure();
    await enable();
    expect(pluginId).not.toBe(oldId);
    expect(essence(await pluginState())).toEqual(before);
    // On start, portnet re-created the veth inside the container's network namespace (nsenter with
    // CAP_SYS_ADMIN, through the docker-run mount), so the exposure answers again.
    expect((await kernelLeftovers()).links).toContain(before.endpoints[0]!.hostIf);
    await until('the exposure answers again', () => serves(80, outside, outside.hostAddress));
    expect((await httpGet(outside, outside.hostAddress, 80, '/hostname')).body.trim()).toBe(web.hostname);

    // New allocations continue from the kept state: a second container gets another address.
    const second = await runContainer({ network: net.name }, cleanup);
    const secondAddress = await containerAddress(second.name, net.name);
    expect(secondAddress.startsWith('198.18.40.')).toBe(true);
    expect(secondAddress).not.toBe(web.address);
    await removeContainer(second.name);
  });

  it('removing containers, networks and then the plugin leaves nothing behind', async () => {
    const id = pluginId;
    await removeContainer(web.name);
    await removeNetwork(net.name);
    await removeNetwork(carved.name);
    // With no network left, a plain disable works.
    await plugin(['disable', PLUGIN]);
    await plugin(['rm', PLUGIN]);
    expect(await pluginExists()).toBe(false);
    expect(existsSync(`/run/docker/plugins/${id}`)).toBe(false);

    const left = await kernelLeftovers();
    expect(left.links).toEqual([]);
    expect(left.routes).toEqual([]);
    expect((await run('nft', ['list', 'table', 'inet', 'portnet'], { allowFail: true })).code).not.toBe(0);
    expect((await run('iptables', ['-w', '5', '-S', 'DOCKER-USER'], { allowFail: true })).stdout).not.toContain('portnet');
    // The state stays on the host for the next install; it holds nothing any more.
    expect(existsSync(join(stateDir, 'state.db'))).toBe(true);
  });
});
