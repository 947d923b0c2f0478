import type { Logger } from 'pino';
import type { DockerNetwork, DockerView } from '../docker/view.js';
import type { Links } from '../dataplane/links.js';
import { formatCidr, ipKey, parseCidr, parseIp } from '../ipam/address.js';
import type { IpamService } from '../ipam/service.js';
import type { NetworkDriver } from '../network/driver.js';
import type { Mutex } from '../state/mutex.js';
import { keys, type State } from '../state/state.js';
import { RepairLog, type Repair } from './repair.js';

/**
 * What the state held when portnet started. Only these objects may be judged against Docker: an
 * object made after start-up can belong to a `docker run` that is still between two calls, and
 * Docker does not show it yet.
 */
export interface StateSnapshot {
  endpoints: Set<string>;
  networks: Set<string>;
  pools: Set<string>;
  /** Allocation keys (`alloc/<pool>/<ip>`). */
  allocations: Set<string>;
}

export function snapshotState(state: State): StateSnapshot {
  return {
    endpoints: new Set(state.endpoints().map((e) => e.id)),
    networks: new Set(state.networks().map((n) => n.id)),
    pools: new Set(state.pools().map((p) => p.id)),
    allocations: new Set(state.allKeys().filter((k) => k.startsWith('alloc/'))),
  };
}

export interface DockerReconcileDeps {
  state: State;
  driver: NetworkDriver;
  ipam: IpamService;
  links: Links;
  lock: Mutex;
  docker: DockerView;
  log: Logger;
  /**
   * Wait this long before reading Docker. Docker resends a call whose connection failed for about
   * 15 s (protocol sheet §1.5), so a `docker run` cut by the crash may still be completing: an
   * address requested before the crash gets its CreateEndpoint only now. Judging before those calls
   * have arrived would free an address that is about to be used.
   */
  settleMs: number;
  /** Reads of Docker to try before giving up (Docker may itself be starting and waiting for us). */
  attempts?: number;
  retryMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
  });

function normalCidr(text: string): string | undefined {
  try {
    return formatCidr(parseCidr(text, 'subnet', { strict: false }));
  } catch {
    return undefined;
  }
}

/**
 * Releases what Docker no longer knows: endpoints (dockerd crashed and skipped DeleteEndpoint; a
 * `docker run` failed while portnet was down), their addresses and rules, networks and pools no
 * Docker network uses, and addresses no Docker endpoint holds (a RequestAddress answered into a
 * dead connection and asked again). Reads Docker outside the plugin's lock, then decides and acts
 * under it. Returns undefined when Docker could not be read (nothing is changed then).
 */
export async function reconcileWithDocker(deps: DockerReconcileDeps, snapshot: StateSnapshot): Promise<Repair[] | undefined> {
  const sleep = deps.sleep ?? defaultSleep;
  const attempts = deps.attempts ?? 6;
  if (deps.settleMs > 0) await sleep(deps.settleMs);
  let view: DockerNetwork[] | undefined;
  for (let i = 1; i <= attempts && view === undefined; i++) {
    try {
      view = await deps.docker.networks();
    } catch (err) {
      deps.log.warn({ attempt: i, of: attempts, err: (err as Error).message }, 'could not read Docker for reconciliation');
      if (i < attempts) await sleep((deps.retryMs ?? 5000) * i);
    }
  }
  if (view === undefined) {
    deps.log.error(
      { attempts },
      'gave up reconciling with Docker: endpoints Docker forgot keep their addresses until portnet restarts with Docker answering',
    );
    return undefined;
  }
  const docker = view;
  return deps.lock.run(() => decide(deps, snapshot, docker));
}

async function decide(deps: DockerReconcileDeps, snapshot: StateSnapshot, view: DockerNetwork[]): Promise<Repair[]> {
  const { state, driver, ipam } = deps;
  const found = new RepairLog(deps.log);
  const knownNetworks = new Set(view.map((n) => n.id));
  const knownEndpoints = new Map(view.flatMap((n) => n.endpoints.map((e) => [e.id, { network: n, endpoint: e }] as const)));

  // Endpoints Docker forgot: their rules, veth and record go, and their address below.
  for (const e of state.endpoints()) {
    if (!snapshot.endpoints.has(e.id) || knownEndpoints.has(e.id)) continue;
    await driver.deleteEndpoint(e.networkId, e.id);
    found.add('endpoint-unknown-to-docker', `removed endpoint ${e.id.slice(0, 12)} (${[e.address, e.address6, e.hostIf].filter(Boolean).join(', ')}): Docker no longer knows it`, {
      endpoint: e.id.slice(0, 12),
      network: e.networkId.slice(0, 12),
      address: e.address,
      ...(e.address6 !== undefined ? { address6: e.address6 } : {}),
      exposures: e.exposures.length,
    });
  }

  // Networks Docker forgot (their endpoints went above).
  for (const n of state.networks()) {
    if (!snapshot.networks.has(n.id) || knownNetworks.has(n.id)) continue;
    const left = state.endpoints().filter((e) => e.networkId === n.id);
    if (left.length > 0) {
      found.add('network-unknown-to-docker', `network ${n.id.slice(0, 12)} is unknown to Docker but still has ${left.length} endpoint(s) Docker knows; left alone`, { network: n.id.slice(0, 12) }, false);
      continue;
    }
    await driver.deleteNetwork(n.id);
    found.add('network-unknown-to-docker', `removed network ${n.id.slice(0, 12)} (${[...n.pools, ...(n.pools6 ?? [])].join(', ')}): Docker no longer knows it`, {
      network: n.id.slice(0, 12),
      pools: [...n.pools, ...(n.pools6 ?? [])],
    });
  }

  // Pools and addresses. A pool belongs to the Docker networks with that subnet (RequestPool carries
  // no network ID; the driver may be any, with portnet as the IPAM only).
  const networksBySubnet = new Map<string, DockerNetwork[]>();
  for (const n of view) {
    for (const s of n.subnets) {
      const c = normalCidr(s);
      if (c) networksBySubnet.set(c, [...(networksBySubnet.get(c) ?? []), n]);
    }
  }
  for (const p of state.pools()) {
    if (!snapshot.pools.has(p.id)) continue;
    const users = networksBySubnet.get(p.pool) ?? [];
    if (users.length === 0 && !state.networks().some((n) => n.pools.includes(p.pool) || (n.pools6 ?? []).includes(p.pool))) {
      const held = state.allocationCount(p.id);
      await ipam.releasePool(p.id);
      found.add('pool-unknown-to-docker', `released pool ${p.pool} and its ${held} address(es): no Docker network uses it`, { pool: p.pool, addresses: held });
      continue;
    }
    const inUse = new Set<string>(state.endpoints().flatMap((e) => (e.address6 === undefined ? [e.address] : [e.address, e.address6])));
    for (const n of users) {
      for (const a of n.reserved) inUse.add(a);
      for (const e of n.endpoints) {
        if (e.ipv4) inUse.add(e.ipv4);
        if (e.ipv6) inUse.add(e.ipv6);
      }
    }
    for (const a of state.allocations(p.id)) {
      const key = keys.alloc(p.id, ipKey(parseIp(a.address, 'address')));
      if (!snapshot.allocations.has(key) || inUse.has(a.address)) continue;
      await ipam.releaseAddress({ PoolID: p.id, Address: a.address });
      found.add('address-unknown-to-docker', `released ${a.address} of pool ${p.pool}: no Docker endpoint, gateway or aux address holds it`, {
        pool: p.pool,
        address: a.address,
        kind: a.kind,
      });
    }
  }

  // Endpoints Docker knows whose veth is gone and could not be put back at start-up.
  const present = new Set(await deps.links.listEndpointLinks());
  for (const e of state.endpoints()) {
    const known = knownEndpoints.get(e.id);
    if (!known?.endpoint.containerId || !e.joined || present.has(e.hostIf)) continue;
    found.add(
      'docker-endpoint-without-veth',
      `container ${known.endpoint.name ?? known.endpoint.containerId.slice(0, 12)} has endpoint ${e.id.slice(0, 12)} (${e.address}) but its veth is gone and its namespace could not be entered; restart the container`,
      { endpoint: e.id.slice(0, 12), container: known.endpoint.containerId.slice(0, 12), address: e.address },
      false,
    );
  }
  deps.log.info(
    { repairs: found.repairs.length, dockerNetworks: view.length, networks: state.networks().length, endpoints: state.endpoints().length },
    'reconciled with Docker',
  );
  return found.repairs;
}

/**
 * Runs reconcileWithDocker at start-up and again whenever Docker (re)activates the plugin: a new
 * dockerd calls Plugin.Activate (a managed plugin: GetCapabilities) once, and a dockerd that
 * crashed may have skipped DeleteEndpoint for the containers it lost. Runs never overlap; requests
 * that arrive during a run are folded into one more run after it. Each run judges only what
 * existed when it was requested (its snapshot), after the settle delay.
 */
export class DockerReconciler {
  private running: Promise<Repair[] | undefined> | undefined;
  private again: string | undefined;
  runs = 0;

  constructor(private readonly deps: DockerReconcileDeps) {}

  /** Starts a run now, or after the one in progress; resolves when that run is done. */
  request(reason: string, snapshot: StateSnapshot = snapshotState(this.deps.state)): Promise<Repair[] | undefined> {
    if (this.running) {
      if (this.again === undefined) this.deps.log.info({ reason }, 'reconciliation with Docker requested; it runs after the current one');
      this.again ??= reason;
      return this.running;
    }
    this.runs++;
    this.deps.log.info({ reason, settleMs: this.deps.settleMs }, 'reconciling with Docker');
    const run = reconcileWithDocker(this.deps, snapshot).catch((err: unknown) => {
      this.deps.log.error({ err }, 'reconciling with Docker failed');
      return undefined;
    });
    this.running = run.finally(() => {
      this.running = undefined;
      const next = this.again;
      this.again = undefined;
      if (next !== undefined) void this.request(next);
    });
    return this.running;
  }
}
