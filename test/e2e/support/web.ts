// Shared pieces of the exposure suites: portnet networks, busybox web servers that say who they are,
// reachability assertions and readers for portnet's own view (nft table, `portnet ls --json`).
//
// Only ever probe loopback, containers and outside hosts the test made, and the host side of their links.
import { expect } from 'vitest';
import type { Cleanup } from './cleanup.js';
import { CommandError, run, type RunResult } from './exec.js';
import {
  containerAddress,
  containerAddress6,
  createNetwork,
  runContainer,
  uniqueName,
  type ContainerOptions,
  type CreatedContainer,
  type CreatedNetwork,
} from './docker.js';
import { httpGet, tcpProbe, type TcpProbe, type Vantage } from './net.js';
import { CLI, E2E_DRIVER, type PluginProcess } from './plugin.js';

export const EXPOSE = 'com.example.expose';
export const EXPOSE_FROM = 'com.example.expose.from';
/** How long a probe that should fail waits; the firewall drops silently, so this is the usual cost. */
export const SHUT_MS = 1200;

/**
 * A portnet network (driver and IPAM) on `subnet` (one per family), removed when the scope ends.
 * An IPv6 subnet in the list turns on `--ipv6`.
 */
export function portnetNetwork(
  local: Cleanup,
  base: string,
  subnet: string | string[],
  options?: Record<string, string>,
): Promise<CreatedNetwork> {
  const subnets = [subnet].flat();
  return createNetwork(
    uniqueName(base),
    {
      driver: E2E_DRIVER,
      ipamDriver: E2E_DRIVER,
      subnet: subnets,
      ...(options ? { options } : {}),
      ...(subnets.some((s) => s.includes(':')) ? { extraArgs: ['--ipv6'] } : {}),
    },
    local,
  );
}

/** busybox httpd (daemonised) on each port, serving /etc: GET /hostname answers the container's hostname. */
export function httpdCmd(ports: number[]): string[] {
  return ['sh', '-c', `${ports.map((p) => `httpd -p ${p} -h /etc`).join(' && ')} && exec sleep 86400`];
}

export interface Web extends CreatedContainer {
  address: string;
  /** Set when the network has IPv6. */
  address6?: string;
  /** Docker's hostname for it: the first 12 characters of the ID (what /hostname serves). */
  hostname: string;
}

/**
 * A container on `net` serving http on `ports` (default 80), with the given expose option and -p
 * values. Resolves once every port answers from the host (the host may reach any port), so later
 * "unreachable" results cannot come from a server that is not up yet.
 */
export async function web(
  local: Cleanup,
  net: string,
  opts: { expose?: string; publish?: string[]; ports?: number[]; ip?: string; ipv6?: boolean; extra?: Partial<ContainerOptions> } = {},
): Promise<Web> {
  const ports = opts.ports ?? [80];
  const attach = { name: net, ...(opts.ip ? { ip: opts.ip } : {}), ...(opts.expose !== undefined ? { driverOpts: { [EXPOSE]: opts.expose } } : {}) };
  const c = await runContainer(
    {
      network: attach,
      ...(opts.publish ? { publish: opts.publish } : {}),
      cmd: httpdCmd(ports),
      ...opts.extra,
    },
    local,
  );
  const address = await containerAddress(c.name, net);
  const address6 = opts.ipv6 ? await containerAddress6(c.name, net) : undefined;
  await Promise.all(ports.map((p) => waitOpen(address, p)));
  if (address6) await Promise.all(ports.map((p) => waitOpen(address6, p)));
  return { ...c, address, ...(address6 ? { address6 } : {}), hostname: c.id.slice(0, 12) };
}

/** Polls from the host until ip:port accepts a connection (5 s at most). */
export async function waitOpen(ip: string, port: number): Promise<void> {
  let last: TcpProbe = { outcome: 'timeout', detail: 'never tried' };
  for (let i = 0; i < 50; i++) {
    last = await tcpProbe('host', ip, port, 500);
    if (last.outcome === 'open') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${ip}:${port} never opened from the host: ${last.outcome} ${last.detail}`);
}

/** The hostname served on ip:port from `from`; fails the test with the reason when there is no answer. */
export async function hostnameVia(from: Vantage, ip: string, port: number): Promise<string> {
  const r = await httpGet(from, ip, port, '/hostname', 4000);
  expect(r.status).toBe(200);
  return r.body.trim();
}

/** A TCP probe that should not complete; returned for the caller's assertion (with the detail in messages). */
export function shut(from: Vantage, ip: string, port: number): Promise<TcpProbe> {
  return tcpProbe(from, ip, port, SHUT_MS);
}

export function expectNotOpen(p: TcpProbe, what: string): void {
  expect(p.outcome, `${what}: ${p.outcome} ${p.detail}`).not.toBe('open');
}

/** Silently dropped: no handshake and no reset (a reset would mean something answered). */
export function expectDropped(p: TcpProbe, what: string): void {
  expect(p.outcome, `${what}: ${p.outcome} ${p.detail}`).toBe('timeout');
}

/** `docker run` that is expected to fail: returns its stderr (the container, if created, is removed by `local`). */
export async function runRefused(local: Cleanup, opts: ContainerOptions): Promise<{ name: string; stderr: string }> {
  const name = opts.name ?? uniqueName('bad');
  try {
    await runContainer({ ...opts, name }, local);
  } catch (e) {
    if (e instanceof CommandError) return { name, stderr: e.result.stderr };
    throw e;
  }
  throw new Error(`docker run ${name} succeeded, expected a refusal`);
}

/** portnet's table without counters (`nft -s list table inet portnet`): equal text means no rule or element changed. */
export async function nftTableText(): Promise<string> {
  return (await run('nft', ['-s', 'list', 'table', 'inet', 'portnet'])).stdout;
}

/** Every set and map of portnet's table with its elements (`nft -j list table inet portnet`). */
export async function nftSets(): Promise<Map<string, unknown[]>> {
  const out = (await run('nft', ['-j', 'list', 'table', 'inet', 'portnet'])).stdout;
  const json = JSON.parse(out) as { nftables: Array<Record<string, { name?: string; elem?: unknown[] }>> };
  const sets = new Map<string, unknown[]>();
  for (const entry of json.nftables) {
    const s = entry.set ?? entry.map;
    if (s?.name) sets.set(s.name, s.elem ?? []);
  }
  return sets;
}

/** Diagnostics for a failure message: the table and the conntrack entries of `proto` (and `port`). */
export async function firewallDump(proto?: 'tcp' | 'udp' | 'sctp', port?: number): Promise<string> {
  const table = await run('nft', ['list', 'table', 'inet', 'portnet'], { allowFail: true });
  if (proto === undefined) return `${table.stdout}${table.stderr}`;
  const args = ['-L', '-p', proto, ...(port === undefined ? [] : ['--orig-port-dst', String(port)])];
  const ct = await run('conntrack', args, { allowFail: true });
  return `${table.stdout}${table.stderr}\nconntrack ${args.join(' ')}:\n${ct.stdout}${ct.stderr}`;
}

/** `portnet CMD… --socket` of the plugin; never throws on a non-zero status. */
export function portnetCli(plugin: PluginProcess, args: string[]): Promise<RunResult> {
  return run('node', [CLI, ...args, '--socket', plugin.socket], { allowFail: true, timeoutMs: 30_000 });
}

/** One exposure of `portnet ls --json`: the fields the suites look at. */
export interface LsExposureJson {
  text: string;
  /** The effective allowlist: canonical CIDRs, 'any', or 'host' (loopback-bound). */
  sources: string[] | 'any' | 'host';
  sourcesFrom: 'item' | 'network' | null;
  hostIface: string | null;
  [k: string]: unknown;
}

export interface LsRowJson {
  container: string | null;
  address: string;
  exposures: LsExposureJson[];
  [k: string]: unknown;
}

export async function portnetLs(plugin: PluginProcess): Promise<LsRowJson[]> {
  const r = await portnetCli(plugin, ['ls', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as LsRowJson[];
}
