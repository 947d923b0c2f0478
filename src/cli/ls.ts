import { formatHost, formatRange } from '../expose/format.js';
import { ipFamily, isLoopbackHostIp } from '../expose/hostip.js';
import { allowsAnySource } from '../expose/sources.js';
import { parseIp } from '../ipam/address.js';
import type { ExposureView, StateView } from '../server/introspect.js';
import { parseClientFlags } from './args.js';
import { fetchState } from './client.js';
import { plural, renderTable } from './table.js';

/**
 * Who may open a connection to an exposure: anyone, this host alone (a loopback host IP, which only
 * the host's own processes reach and which is never filtered), or the listed source CIDRs.
 */
export type Sources = 'any' | 'host' | string[];

export interface LsExposure {
  /** `*:8080 → 80/tcp`: host side (address:port, `*` for every address, `%eth0` for an interface) → container port/protocol. */
  text: string;
  /** Null: every host address, or an interface (hostIface). */
  hostIp: string | null;
  /** Interface the exposure is bound to by name; null when bound to addresses. */
  hostIface: string | null;
  hostPort: number;
  hostPortEnd: number;
  containerPort: number;
  containerPortEnd: number;
  proto: string;
  origin: 'option' | 'publish';
  sources: Sources;
  /** Where a source list came from: the item's own `@…` or the network's com.example.expose.from. */
  sourcesFrom: 'item' | 'network' | null;
  /** False when nothing is opened for the exposure; `notApplied` says why. */
  applied: boolean;
  notApplied?: string;
}

/** One line of `portnet ls` (what `--json` prints, one object per endpoint). */
export interface LsRow {
  /** Docker's network name; null until portnet has learnt it. */
  network: string | null;
  networkId: string;
  /** Container name; null until portnet has learnt it from Docker ("?" in the table). */
  container: string | null;
  containerId: string | null;
  endpoint: string;
  hostIf: string;
  address: string;
  /** IPv6 address on dual-stack networks, else null. */
  address6: string | null;
  joined: boolean;
  exposures: LsExposure[];
}

/**
 * How the firewall treats an exposure on an endpoint. A host side of IPv6 only needs the endpoint
 * to have an IPv6 address (there is nothing to forward to otherwise); one covering both families
 * still applies to IPv4 without it.
 */
export function exposureKind(
  x: Pick<ExposureView, 'hostIp' | 'hostIface'>,
  hasAddress6: boolean,
): 'all' | 'bound' | 'loopback' | 'iface' | 'skipped' {
  if (x.hostIface !== undefined) return 'iface';
  const hostIp = x.hostIp === '' ? undefined : x.hostIp;
  if (hostIp === undefined) return 'all';
  if (ipFamily(hostIp) === 6 && !hasAddress6) return 'skipped';
  if (hostIp === '0.0.0.0' || hostIp === '::') return 'all';
  return isLoopbackHostIp(hostIp) ? 'loopback' : 'bound';
}

export function lsExposure(x: ExposureView, hasAddress6 = false): LsExposure {
  const kind = exposureKind(x, hasAddress6);
  const hostIp = x.hostIp === '' ? undefined : x.hostIp;
  const sources: Sources = kind === 'loopback' ? 'host' : allowsAnySource(x.sources) ? 'any' : [...(x.sources ?? [])];
  return {
    text: `${formatHost({ hostIp, hostIface: x.hostIface })}:${formatRange(x.hostPort, x.hostPortEnd)} → ${formatRange(x.containerPort, x.containerPortEnd)}/${x.proto}`,
    hostIp: hostIp ?? null,
    hostIface: x.hostIface ?? null,
    hostPort: x.hostPort,
    hostPortEnd: x.hostPortEnd,
    containerPort: x.containerPort,
    containerPortEnd: x.containerPortEnd,
    proto: x.proto,
    origin: x.origin,
    sources,
    sourcesFrom: kind === 'loopback' || x.sources === undefined ? null : (x.sourcesFrom ?? 'item'),
    applied: kind !== 'skipped',
    ...(kind === 'skipped' ? { notApplied: 'endpoint has no IPv6 address' } : {}),
  };
}

function addressOrder(a: string, b: string): number {
  const value = (text: string): bigint | undefined => {
    try {
      return parseIp(text, 'address').value;
    } catch {
      return undefined;
    }
  };
  const [x, y] = [value(a), value(b)];
  if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? 1 : -1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Rows sorted by network, then address. */
export function lsRows(view: StateView): LsRow[] {
  const networks = new Map(view.networks.map((n) => [n.id, n]));
  const rows = view.endpoints.map(
    (e): LsRow => ({
      network: networks.get(e.networkId)?.name ?? null,
      networkId: e.networkId,
      container: e.container?.name ?? null,
      containerId: e.container?.id ?? null,
      endpoint: e.id,
      hostIf: e.hostIf,
      address: e.address,
      address6: e.address6 ?? null,
      joined: e.joined,
      exposures: (e.exposureDetails ?? []).map((x) => lsExposure(x, e.address6 !== undefined)),
    }),
  );
  const netKey = (r: LsRow) => r.network ?? r.networkId;
  return rows.sort((a, b) => (netKey(a) < netKey(b) ? -1 : netKey(a) > netKey(b) ? 1 : addressOrder(a.address, b.address)));
}

export function sourcesText(x: LsExposure): string {
  if (!x.applied) return `not applied (${x.notApplied ?? 'unknown reason'})`;
  if (x.sources === 'host') return 'this host only';
  const list = x.sources === 'any' ? 'any' : x.sources.join(' ');
  return x.sourcesFrom === 'network' ? `${list} (network default)` : list;
}

/** The table people read. */
export function renderLs(rows: readonly LsRow[]): string {
  if (rows.length === 0) return 'no endpoints\n';
  const body = rows.map((r) => [
    r.network ?? r.networkId.slice(0, 12),
    r.container ?? '?',
    r.endpoint.slice(0, 12),
    r.address6 === null ? r.address : [r.address, r.address6],
    r.exposures.length === 0 ? '-' : r.exposures.map((x) => x.text),
    r.exposures.length === 0 ? '-' : r.exposures.map(sourcesText),
  ]);
  return renderTable(['NETWORK', 'CONTAINER', 'ENDPOINT', 'ADDRESS', 'EXPOSED (HOST → CONTAINER)', 'FROM'], body);
}

/** A line for stderr when names are missing because Docker is out of reach. */
export function namesNote(view: StateView, rows: readonly LsRow[]): string | undefined {
  const unknown = rows.filter((r) => r.container === null).length;
  if (unknown === 0) return undefined;
  const docker = view.docker;
  if (docker?.reachable === false) {
    return `${plural(unknown, 'container name')} unknown: portnet cannot reach Docker${docker.where ? ` at ${docker.where}` : ''}${docker.error ? ` (${docker.error})` : ''}`;
  }
  return undefined;
}

export async function lsCommand(args: string[]): Promise<number> {
  const flags = parseClientFlags(args);
  const view = await fetchState(flags.socket);
  const rows = lsRows(view);
  if (flags.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(renderLs(rows));
  const note = namesNote(view, rows);
  if (note) process.stderr.write(`note: ${note}\n`);
  return 0;
}
