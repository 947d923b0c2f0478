import { isIpv6, isLoopbackIpv4, ipv4ToInt } from '../dataplane/nft/syntax.js';
import { formatHostIp, formatRange } from '../expose/format.js';
import type { ExposureView, StateView } from '../server/introspect.js';
import { parseClientFlags } from './args.js';
import { fetchState } from './client.js';
import { plural, renderTable } from './table.js';

/** Who may open a connection to an exposure. Source allowlists are not built yet: "any" or the host alone. */
export type Sources = 'any' | 'host' | 'none';

export interface LsExposure {
  /** `*:8080 → 80/tcp`: host side (address:port, `*` for every address) → container port/protocol. */
  text: string;
  /** Null: every host address. */
  hostIp: string | null;
  hostPort: number;
  hostPortEnd: number;
  containerPort: number;
  containerPortEnd: number;
  proto: string;
  origin: 'option' | 'publish';
  sources: Sources;
  /** False for an exposure on an IPv6 host address: endpoints are IPv4-only, nothing is opened for it. */
  applied: boolean;
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
  joined: boolean;
  exposures: LsExposure[];
}

export function exposureKind(hostIp: string | undefined): 'all' | 'bound' | 'loopback' | 'skipped' {
  if (hostIp === undefined || hostIp === '' || hostIp === '0.0.0.0') return 'all';
  if (isIpv6(hostIp)) return 'skipped';
  return isLoopbackIpv4(hostIp) ? 'loopback' : 'bound';
}

export function lsExposure(x: ExposureView): LsExposure {
  const kind = exposureKind(x.hostIp);
  const host = x.hostIp === undefined ? '*' : formatHostIp(x.hostIp);
  return {
    text: `${host}:${formatRange(x.hostPort, x.hostPortEnd)} → ${formatRange(x.containerPort, x.containerPortEnd)}/${x.proto}`,
    hostIp: x.hostIp ?? null,
    hostPort: x.hostPort,
    hostPortEnd: x.hostPortEnd,
    containerPort: x.containerPort,
    containerPortEnd: x.containerPortEnd,
    proto: x.proto,
    origin: x.origin,
    sources: kind === 'skipped' ? 'none' : kind === 'loopback' ? 'host' : 'any',
    applied: kind !== 'skipped',
  };
}

function addressOrder(a: string): number {
  try {
    return ipv4ToInt(a);
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
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
      joined: e.joined,
      exposures: (e.exposureDetails ?? []).map(lsExposure),
    }),
  );
  const netKey = (r: LsRow) => r.network ?? r.networkId;
  return rows.sort((a, b) => (netKey(a) < netKey(b) ? -1 : netKey(a) > netKey(b) ? 1 : addressOrder(a.address) - addressOrder(b.address)));
}

export function sourcesText(x: LsExposure): string {
  return x.sources === 'any' ? 'any' : x.sources === 'host' ? 'this host only' : 'not applied (IPv6 host address)';
}

/** The table people read. */
export function renderLs(rows: readonly LsRow[]): string {
  if (rows.length === 0) return 'no endpoints\n';
  const body = rows.map((r) => [
    r.network ?? r.networkId.slice(0, 12),
    r.container ?? '?',
    r.endpoint.slice(0, 12),
    r.address,
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
