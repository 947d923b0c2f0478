import type { Proto } from '../../expose/types.js';
import type { FirewallEndpoint, FirewallModel, FirewallNetwork, ResolvedExposure } from '../model.js';
import {
  FirewallModelError,
  cidr4,
  hostIf,
  ipv4,
  ipv4ToInt,
  isIpv6,
  isLoopbackIpv4,
  port,
  proto,
  type Cidr4,
} from './syntax.js';

/**
 * The policy decisions of DESIGN §2, as data: which set or map every exposure and endpoint lands in.
 * Pure and deterministic (everything sorted), so the rendered text is a stable function of the model.
 */

export interface PortRange {
  first: number;
  last: number;
}

/** `address . proto . ports`, the key shape of the allow and drop sets. */
export interface ServiceKey {
  address: string;
  proto: Proto;
  ports: PortRange;
}

/** One host port translated to one container port (ranges are expanded port by port). */
export interface DnatEntry {
  /** Undefined for exposures on every host address. */
  hostIp?: string;
  proto: Proto;
  hostPort: number;
  address: string;
  containerPort: number;
}

/** Map elements grouped per endpoint, so the rendered map says whose they are. */
export interface EndpointGroup<T> {
  hostIf: string;
  address: string;
  items: T[];
}

export interface NetworkPlan {
  id: string;
  index: number;
  pools: Cidr4[];
  icc: boolean;
  masquerade: boolean;
}

export type ExposureKind = 'all' | 'bound' | 'loopback' | 'skipped';

export interface ExposurePlan {
  exposure: ResolvedExposure;
  kind: ExposureKind;
  /** Docker-style `HOST_IP:HOST_PORT->CONTAINER_PORT/PROTO`. */
  text: string;
}

export interface EndpointPlan {
  id: string;
  hostIf: string;
  address: string;
  network: NetworkPlan;
  exposures: ExposurePlan[];
}

export interface RulesetPlan {
  networks: NetworkPlan[];
  endpoints: EndpointPlan[];
  pools: string[];
  masqueradePools: string[];
  /** `source pool . destination pool` pairs that may talk on any port (icc on). */
  iccPairs: [string, string][];
  /** `hostIf . address`: the only source a `pn` veth may send from. */
  endpointSources: { hostIf: string; address: string }[];
  /** Reachable directly on the container address, from anywhere. */
  exposedDirect: ServiceKey[];
  /** Reachable from anywhere once DNATed by portnet (all-address and host-IP-bound exposures). */
  exposedDnat: ServiceKey[];
  /** Host-side keys of loopback-bound exposures; packets for them from other interfaces drop. */
  loopbackExposures: ServiceKey[];
  /** Endpoints that can reach themselves through a host address and so need SNAT for it. */
  hairpinSelf: string[];
  dnatAny: EndpointGroup<DnatEntry>[];
  dnatBound: EndpointGroup<DnatEntry>[];
}

const PROTO_ORDER: Record<Proto, number> = { tcp: 0, udp: 1, sctp: 2 };

export function planRuleset(model: FirewallModel): RulesetPlan {
  const networks = planNetworks(model.networks);
  const endpoints = planEndpoints(model.endpoints, networks);
  checkDnatConflicts(endpoints);

  const exposedDirect: ServiceKey[] = [];
  const exposedDnat: ServiceKey[] = [];
  const loopbackExposures: ServiceKey[] = [];
  const hairpinSelf: string[] = [];
  const dnatAny: EndpointGroup<DnatEntry>[] = [];
  const dnatBound: EndpointGroup<DnatEntry>[] = [];

  for (const ep of endpoints) {
    const any: DnatEntry[] = [];
    const bound: DnatEntry[] = [];
    for (const { exposure: x, kind } of ep.exposures) {
      if (kind === 'skipped') continue;
      const containerKey: ServiceKey = {
        address: ep.address,
        proto: x.proto,
        ports: { first: x.containerPort, last: x.containerPortEnd },
      };
      const entries = expand(x, ep.address);
      if (kind === 'all') {
        exposedDirect.push(containerKey);
        exposedDnat.push(containerKey);
        any.push(...entries);
      } else if (kind === 'bound') {
        exposedDnat.push(containerKey);
        bound.push(...entries);
      } else {
        // Not in exposedDnat: only the host's own processes may use it, and they never pass forward.
        loopbackExposures.push({
          address: x.hostIp as string,
          proto: x.proto,
          ports: { first: x.hostPort, last: x.hostPortEnd },
        });
        bound.push(...entries);
      }
    }
    if (ep.exposures.some((x) => x.kind === 'all' || x.kind === 'bound')) hairpinSelf.push(ep.address);
    if (any.length > 0) dnatAny.push({ hostIf: ep.hostIf, address: ep.address, items: any.sort(byDnatKey) });
    if (bound.length > 0) dnatBound.push({ hostIf: ep.hostIf, address: ep.address, items: bound.sort(byDnatKey) });
  }

  const iccPairs: [string, string][] = [];
  for (const net of networks) {
    if (!net.icc) continue;
    for (const from of net.pools) for (const to of net.pools) iccPairs.push([from.text, to.text]);
  }

  return {
    networks,
    endpoints,
    pools: sortedPools(networks.flatMap((n) => n.pools)),
    masqueradePools: sortedPools(networks.filter((n) => n.masquerade).flatMap((n) => n.pools)),
    iccPairs,
    endpointSources: [...endpoints]
      .sort((a, b) => cmp(a.hostIf, b.hostIf))
      .map((ep) => ({ hostIf: ep.hostIf, address: ep.address })),
    exposedDirect: mergeServiceKeys(exposedDirect),
    exposedDnat: mergeServiceKeys(exposedDnat),
    loopbackExposures: mergeServiceKeys(loopbackExposures),
    hairpinSelf: hairpinSelf.sort((a, b) => ipv4ToInt(a) - ipv4ToInt(b)),
    dnatAny,
    dnatBound,
  };
}

function planNetworks(input: FirewallNetwork[]): NetworkPlan[] {
  const networks = input
    .map((n): NetworkPlan => {
      if (!Number.isInteger(n.index) || n.index < 0) {
        throw new FirewallModelError(`network ${n.id}: index ${String(n.index)} is not a small non-negative integer`);
      }
      return {
        id: n.id,
        index: n.index,
        pools: n.pools.map(cidr4).sort((a, b) => a.first - b.first),
        icc: n.icc,
        masquerade: n.masquerade,
      };
    })
    .sort((a, b) => a.index - b.index || cmp(a.id, b.id));
  unique(networks.map((n) => n.id), 'network id');
  unique(networks.map((n) => String(n.index)), 'network index');

  // Overlapping pools would make "same network" ambiguous and the interval sets invalid.
  const all = networks
    .flatMap((n) => n.pools.map((p) => ({ net: n, pool: p })))
    .sort((a, b) => a.pool.first - b.pool.first);
  for (let i = 1; i < all.length; i++) {
    const prev = all[i - 1]!;
    const cur = all[i]!;
    if (cur.pool.first <= prev.pool.last) {
      throw new FirewallModelError(
        `pool ${cur.pool.text} of network ${cur.net.id} overlaps pool ${prev.pool.text} of network ${prev.net.id}`,
      );
    }
  }
  return networks;
}

function planEndpoints(input: FirewallEndpoint[], networks: NetworkPlan[]): EndpointPlan[] {
  const byId = new Map(networks.map((n) => [n.id, n]));
  const endpoints = input.map((e): EndpointPlan => {
    const network = byId.get(e.networkId);
    if (!network) throw new FirewallModelError(`endpoint ${e.id}: unknown network ${e.networkId}`);
    const address = ipv4(e.address);
    const n = ipv4ToInt(address);
    if (!network.pools.some((p) => p.first <= n && n <= p.last)) {
      throw new FirewallModelError(`endpoint ${e.id}: address ${address} is outside the pools of network ${network.id}`);
    }
    return {
      id: e.id,
      hostIf: hostIf(e.hostIf),
      address,
      network,
      exposures: e.exposures.map((x) => planExposure(x, e.id)).sort(byExposure),
    };
  });
  unique(endpoints.map((e) => e.id), 'endpoint id');
  unique(endpoints.map((e) => e.hostIf), 'endpoint interface');
  unique(endpoints.map((e) => e.address), 'endpoint address');
  return endpoints.sort(
    (a, b) => a.network.index - b.network.index || ipv4ToInt(a.address) - ipv4ToInt(b.address),
  );
}

function planExposure(input: ResolvedExposure, endpointId: string): ExposurePlan {
  const p = proto(input.proto);
  const where = `endpoint ${endpointId}`;
  const x: ResolvedExposure = {
    hostPort: port(input.hostPort, `${where}: host port`),
    hostPortEnd: port(input.hostPortEnd, `${where}: host port`),
    containerPort: port(input.containerPort, `${where}: container port`),
    containerPortEnd: port(input.containerPortEnd, `${where}: container port`),
    proto: p,
  };
  if (x.hostPortEnd < x.hostPort || x.containerPortEnd < x.containerPort) {
    throw new FirewallModelError(`${where}: port range ends before it starts`);
  }
  if (x.hostPortEnd - x.hostPort !== x.containerPortEnd - x.containerPort) {
    throw new FirewallModelError(`${where}: host and container port ranges differ in length`);
  }
  let kind: ExposureKind;
  const host = input.hostIp;
  if (host === undefined || host === '' || host === '0.0.0.0') {
    kind = 'all';
  } else if (isIpv6(host)) {
    // Endpoints are IPv4-only: there is nothing an IPv6 host address could be translated to.
    x.hostIp = host;
    kind = 'skipped';
  } else {
    x.hostIp = ipv4(host);
    kind = isLoopbackIpv4(x.hostIp) ? 'loopback' : 'bound';
  }
  return { exposure: x, kind, text: exposureText(x) };
}

export function exposureText(x: ResolvedExposure): string {
  const range = (a: number, b: number) => (a === b ? String(a) : `${a}-${b}`);
  const host = x.hostIp === undefined ? '0.0.0.0' : isIpv6(x.hostIp) ? `[${x.hostIp}]` : x.hostIp;
  return `${host}:${range(x.hostPort, x.hostPortEnd)}->${range(x.containerPort, x.containerPortEnd)}/${x.proto}`;
}

function expand(x: ResolvedExposure, address: string): DnatEntry[] {
  const out: DnatEntry[] = [];
  for (let offset = 0; offset <= x.hostPortEnd - x.hostPort; offset++) {
    const entry: DnatEntry = {
      proto: x.proto,
      hostPort: x.hostPort + offset,
      address,
      containerPort: x.containerPort + offset,
    };
    if (x.hostIp !== undefined) entry.hostIp = x.hostIp;
    out.push(entry);
  }
  return out;
}

/**
 * Upstream conflict checks should make this unreachable, but a map cannot hold two values for one
 * key and the firewall must never pick one silently: fail loudly, naming both holders.
 */
function checkDnatConflicts(endpoints: EndpointPlan[]): void {
  const anyHolders = new Map<string, string>();
  const boundHolders = new Map<string, string>();
  const claim = (holders: Map<string, string>, key: string, holder: string, what: string) => {
    const previous = holders.get(key);
    if (previous !== undefined) {
      throw new FirewallModelError(`${what} is exposed by both ${previous} and ${holder}`);
    }
    holders.set(key, holder);
  };
  for (const ep of endpoints) {
    for (const { exposure: x, kind } of ep.exposures) {
      if (kind === 'skipped') continue;
      for (let p = x.hostPort; p <= x.hostPortEnd; p++) {
        const holder = `endpoint ${ep.id}`;
        if (kind === 'all') claim(anyHolders, `${x.proto}/${p}`, holder, `host port ${p}/${x.proto}`);
        else claim(boundHolders, `${x.hostIp}/${x.proto}/${p}`, holder, `host port ${x.hostIp}:${p}/${x.proto}`);
      }
    }
  }
  for (const [key, holder] of boundHolders) {
    const [ip, p, portText] = key.split('/') as [string, string, string];
    const other = anyHolders.get(`${p}/${portText}`);
    if (other !== undefined) {
      throw new FirewallModelError(
        `host port ${portText}/${p} is exposed on all addresses by ${other} and on ${ip} by ${holder}`,
      );
    }
  }
}

/** Interval sets reject overlapping elements, so ranges per address and protocol are merged. */
function mergeServiceKeys(keys: ServiceKey[]): ServiceKey[] {
  const sorted = [...keys].sort(byServiceKey);
  const out: ServiceKey[] = [];
  for (const key of sorted) {
    const last = out[out.length - 1];
    if (last && last.address === key.address && last.proto === key.proto && key.ports.first <= last.ports.last) {
      last.ports = { first: last.ports.first, last: Math.max(last.ports.last, key.ports.last) };
    } else {
      out.push({ ...key, ports: { ...key.ports } });
    }
  }
  return out;
}

function sortedPools(pools: Cidr4[]): string[] {
  return [...pools].sort((a, b) => a.first - b.first).map((p) => p.text);
}

function byServiceKey(a: ServiceKey, b: ServiceKey): number {
  return (
    ipv4ToInt(a.address) - ipv4ToInt(b.address) ||
    PROTO_ORDER[a.proto] - PROTO_ORDER[b.proto] ||
    a.ports.first - b.ports.first ||
    a.ports.last - b.ports.last
  );
}

function byDnatKey(a: DnatEntry, b: DnatEntry): number {
  return (
    ipv4ToInt(a.hostIp ?? '0.0.0.0') - ipv4ToInt(b.hostIp ?? '0.0.0.0') ||
    PROTO_ORDER[a.proto] - PROTO_ORDER[b.proto] ||
    a.hostPort - b.hostPort
  );
}

function byExposure(a: ExposurePlan, b: ExposurePlan): number {
  return (
    PROTO_ORDER[a.exposure.proto] - PROTO_ORDER[b.exposure.proto] ||
    cmp(a.exposure.hostIp ?? '', b.exposure.hostIp ?? '') ||
    a.exposure.hostPort - b.exposure.hostPort ||
    a.exposure.containerPort - b.exposure.containerPort
  );
}

function unique(values: string[], what: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) throw new FirewallModelError(`duplicate ${what} ${v}`);
    seen.add(v);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
