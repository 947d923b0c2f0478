import { readFile } from 'node:fs/promises';
import { DOCKER_USER } from '../dataplane/dockerUser.js';
import { CommandError, runCommand } from '../dataplane/exec.js';
import { HOST_IF_PREFIX, ROUTE_PROTO } from '../dataplane/links.js';
import { DEFAULT_TABLE } from '../dataplane/nft/render.js';
import { ROUTED_GATEWAY_V4 } from '../ipam/service.js';
import { parseNftTable, type LiveTable } from './nftJson.js';

/** What `portnet doctor` and `inspect` read from the kernel, gathered in one place so checks run on fakes. */
export interface KernelFacts {
  nft: { version?: string; error?: string };
  /** portnet's table; undefined when absent or unreadable (tableError says which). */
  table?: LiveTable;
  tableError?: string;
  /** Content of /proc/sys/net/ipv4/ip_forward. */
  ipForward?: string;
  iptables: IptablesFacts;
  /** How the host would route to the containers' gateway address (`ip route get 169.254.1.1`). */
  gatewayRoute: { dev?: string; type?: string; error?: string };
  /** Routes with portnet's route protocol. */
  routes: KernelRoute[];
  /** Host-side veths named like portnet's (`pn…`). */
  links: Array<{ name: string; up: boolean }>;
  /** Per pn link: proxy_arp and forwarding sysctls. */
  sysctls: Record<string, { proxyArp?: string; forwarding?: string }>;
}

export interface IptablesFacts {
  error?: string;
  forwardPolicy?: string;
  /** `-A FORWARD -j DOCKER-USER` lines. */
  jumps: number;
  chainExists: boolean;
  /** DOCKER-USER's rules as `iptables -S` prints them. */
  dockerUser: string[];
}

export interface KernelRoute {
  /** unicast, unreachable, blackhole, … */
  type: string;
  dst: string;
  dev?: string;
  metric?: number;
}

export type Runner = (program: string, args: string[]) => Promise<string>;

function message(err: unknown): string {
  if (err instanceof CommandError) return err.code === null ? `${err.command.split(' ')[0]} is not installed (${err.stderr.trim()})` : err.stderr.trim() || err.message;
  return err instanceof Error ? err.message : String(err);
}

export async function readNft(run: Runner = runCommand, table = DEFAULT_TABLE): Promise<Pick<KernelFacts, 'nft' | 'table' | 'tableError'>> {
  let version: string;
  try {
    version = (await run('nft', ['--version'])).trim();
  } catch (err) {
    return { nft: { error: message(err) }, tableError: 'nft is not available' };
  }
  try {
    return { nft: { version }, table: parseNftTable(await run('nft', ['-j', 'list', 'table', 'inet', table])) };
  } catch (err) {
    const text = message(err);
    return { nft: { version }, tableError: /No such file or directory/.test(text) ? 'absent' : text };
  }
}

export function parseIptables(text: string): IptablesFacts {
  const lines = text.split('\n').map((l) => l.trim());
  const policy = lines.map((l) => /^-P FORWARD (\S+)/.exec(l)?.[1]).find((p) => p !== undefined);
  return {
    ...(policy ? { forwardPolicy: policy } : {}),
    jumps: lines.filter((l) => l === `-A FORWARD -j ${DOCKER_USER}`).length,
    chainExists: lines.includes(`-N ${DOCKER_USER}`),
    dockerUser: lines.filter((l) => l.startsWith(`-A ${DOCKER_USER} `)),
  };
}

export async function readIptables(run: Runner = runCommand): Promise<IptablesFacts> {
  try {
    return parseIptables(await run('iptables', ['-w', '5', '-t', 'filter', '-S']));
  } catch (err) {
    return { error: message(err), jumps: 0, chainExists: false, dockerUser: [] };
  }
}

export async function readRoutes(run: Runner = runCommand): Promise<KernelRoute[]> {
  const raw = JSON.parse((await run('ip', ['-j', '-4', 'route', 'show', 'proto', ROUTE_PROTO])) || '[]') as Array<Record<string, unknown>>;
  return raw.map((r) => ({
    type: typeof r.type === 'string' ? r.type : 'unicast',
    dst: String(r.dst),
    ...(typeof r.dev === 'string' ? { dev: r.dev } : {}),
    ...(typeof r.metric === 'number' ? { metric: r.metric } : {}),
  }));
}

export async function readLinks(run: Runner = runCommand): Promise<KernelFacts['links']> {
  const raw = JSON.parse((await run('ip', ['-j', 'link', 'show', 'type', 'veth'])) || '[]') as Array<{ ifname?: string; flags?: string[] }>;
  return raw
    .filter((l) => typeof l.ifname === 'string' && l.ifname.startsWith(HOST_IF_PREFIX))
    .map((l) => ({ name: l.ifname as string, up: (l.flags ?? []).includes('UP') }));
}

export async function readGatewayRoute(run: Runner = runCommand): Promise<KernelFacts['gatewayRoute']> {
  try {
    const [r] = JSON.parse((await run('ip', ['-j', 'route', 'get', ROUTED_GATEWAY_V4])) || '[]') as Array<{ dev?: string; type?: string }>;
    if (!r) return { error: 'no answer' };
    return { ...(r.dev ? { dev: r.dev } : {}), ...(r.type ? { type: r.type } : {}) };
  } catch (err) {
    return { error: message(err) };
  }
}

async function readSysctl(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Everything doctor looks at, read now. Needs root for nft and iptables. */
export async function readKernel(run: Runner = runCommand, table = DEFAULT_TABLE): Promise<KernelFacts> {
  const [nft, iptables, gatewayRoute, routes, links, ipForward] = await Promise.all([
    readNft(run, table),
    readIptables(run),
    readGatewayRoute(run),
    readRoutes(run),
    readLinks(run),
    readSysctl('/proc/sys/net/ipv4/ip_forward'),
  ]);
  const sysctls: KernelFacts['sysctls'] = {};
  for (const l of links) {
    const [proxyArp, forwarding] = await Promise.all([
      readSysctl(`/proc/sys/net/ipv4/conf/${l.name}/proxy_arp`),
      readSysctl(`/proc/sys/net/ipv4/conf/${l.name}/forwarding`),
    ]);
    sysctls[l.name] = { ...(proxyArp !== undefined ? { proxyArp } : {}), ...(forwarding !== undefined ? { forwarding } : {}) };
  }
  return { ...nft, iptables, gatewayRoute, routes, links, sysctls, ...(ipForward !== undefined ? { ipForward } : {}) };
}
