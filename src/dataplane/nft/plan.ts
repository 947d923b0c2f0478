import type { Proto } from '../../expose/types.js';
import type { FirewallEndpoint, FirewallModel, FirewallNetwork, ResolvedExposure } from '../model.js';
import {
  FirewallModelError,
  cidr4,
  hostIf,
  intToIpv4,
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

/**
 * `address . proto . port`, the key shape of the allow and drop sets. Every key holds one port
 * (`ports.first === ports.last`): ranges are expanded, like the DNAT maps, so that the sets are
 * plain hashes. Adding or deleting one element of a hash set costs the same at any size, while the
 * kernel's concatenated-interval sets (pipapo) rebuild their lookup table on every delete
 * (see scripts/bench/README.md).
 */
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
  /** `address` as a number, for sorting without parsing it again. */
  addressInt: number;
  network: NetworkPlan;
  exposures: ExposurePlan[];
}

/** Everything one endpoint puts in the sets and maps (see endpointParts). */
export interface EndpointParts {
  /** Allowed on the container address from anywhere (exposures on all host addresses). */
  exposedDirect: ServiceKey[];
  /** Allowed once DNATed (all-address and host-IP-bound exposures). */
  exposedDnat: ServiceKey[];
  /** Host-side keys of loopback-bound exposures. */
  loopbackExposures: ServiceKey[];
  /** Whether the endpoint can reach itself through a host address (needs SNAT). */
  hairpinSelf: boolean;
  dnatAny: DnatEntry[];
  dnatBound: DnatEntry[];
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

  const exposedDirect: Keyed<ServiceKey>[] = [];
  const exposedDnat: Keyed<ServiceKey>[] = [];
  const loopbackExposures: Keyed<ServiceKey>[] = [];
  const hairpinSelf: Keyed<string>[] = [];
  const dnatAny: EndpointGroup<DnatEntry>[] = [];
  const dnatBound: EndpointGroup<DnatEntry>[] = [];

  for (const ep of endpoints) {
    const parts = endpointParts(ep);
    for (const k of parts.exposedDirect) exposedDirect.push({ n: ep.addressInt, k });
    for (const k of parts.exposedDnat) exposedDnat.push({ n: ep.addressInt, k });
    for (const k of parts.loopbackExposures) loopbackExposures.push({ n: ipv4ToInt(k.address), k });
    if (parts.hairpinSelf) hairpinSelf.push({ n: ep.addressInt, k: ep.address });
    if (parts.dnatAny.length > 0) dnatAny.push({ hostIf: ep.hostIf, address: ep.address, items: parts.dnatAny });
    if (parts.dnatBound.length > 0) dnatBound.push({ hostIf: ep.hostIf, address: ep.address, items: parts.dnatBound });
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
    exposedDirect: sortServiceKeys(exposedDirect),
    exposedDnat: sortServiceKeys(exposedDnat),
    loopbackExposures: sortServiceKeys(loopbackExposures),
    // Endpoints are sorted by network, then address; the set by address alone.
    hairpinSelf: hairpinSelf.sort((a, b) => a.n - b.n).map((h) => h.k),
    dnatAny,
    dnatBound,
  };
}

/**
 * What one endpoint contributes to the sets and maps. It depends on the endpoint alone (never on
 * other endpoints or on its network's settings), which is what lets the firewall apply a change as
 * a delta: the elements of an endpoint that did not change are the elements it had.
 */
export function endpointParts(ep: EndpointPlan): EndpointParts {
  const direct = new Map<string, ServiceKey>();
  const dnat = new Map<string, ServiceKey>();
  const loopback = new Map<string, ServiceKey>();
  const any: DnatEntry[] = [];
  const bound: DnatEntry[] = [];
  const add = (into: Map<string, ServiceKey>, address: string, proto: Proto, first: number, last: number) => {
    for (let p = first; p <= last; p++) {
      const id = `${proto} ${p}`;
      if (!into.has(id)) into.set(id, { address, proto, ports: { first: p, last: p } });
    }
  };
  for (const { exposure: x, kind } of ep.exposures) {
    if (kind === 'skipped') continue;
    const entries = expand(x, ep.address);
    if (kind === 'all') {
      add(direct, ep.address, x.proto, x.containerPort, x.containerPortEnd);
      add(dnat, ep.address, x.proto, x.containerPort, x.containerPortEnd);
      any.push(...entries);
    } else if (kind === 'bound') {
      add(dnat, ep.address, x.proto, x.containerPort, x.containerPortEnd);
      bound.push(...entries);
    } else {
      // Not in exposedDnat: only the host's own processes may use it, and they never pass forward.
      add(loopback, x.hostIp as string, x.proto, x.hostPort, x.hostPortEnd);
      bound.push(...entries);
    }
  }
  const byKey = (a: ServiceKey, b: ServiceKey) =>
    cmp(a.address, b.address) || PROTO_ORDER[a.proto] - PROTO_ORDER[b.proto] || a.ports.first - b.ports.first;
  return {
    exposedDirect: [...direct.values()].sort(byKey),
    exposedDnat: [...dnat.values()].sort(byKey),
    loopbackExposures: [...loopback.values()].sort(byKey),
    hairpinSelf: ep.exposures.some((x) => x.kind === 'all' || x.kind === 'bound'),
    dnatAny: any.sort(byDnatKey),
    dnatBound: bound.sort(byDnatKey),
  };
}
/** A value with a number to sort it by (an address parsed once, not in every comparison). */
interface Keyed<T> {
  n: number;
  k: T;
}

function sortServiceKeys(keys: Keyed<ServiceKey>[]): ServiceKey[] {
  return keys
    .sort((a, b) => a.n - b.n || PROTO_ORDER[a.k.proto] - PROTO_ORDER[b.k.proto] || a.k.ports.first - b.k.ports.first)
    .map((x) => x.k);
}

export function planNetworks(input: FirewallNetwork[]): NetworkPlan[] {
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
  const endpoints = input.map((e) => planEndpoint(e, byId));
  unique(endpoints.map((e) => e.id), 'endpoint id');
  unique(endpoints.map((e) => e.hostIf), 'endpoint interface');
  unique(endpoints.map((e) => e.address), 'endpoint address');
  return endpoints.sort((a, b) => a.network.index - b.network.index || a.addressInt - b.addressInt);
}

/** One endpoint, checked on its own: interface name, address inside its network's pools, exposures. */
export function planEndpoint(e: FirewallEndpoint, networks: ReadonlyMap<string, NetworkPlan>): EndpointPlan {
  const network = networks.get(e.networkId);
  if (!network) throw new FirewallModelError(`endpoint ${e.id}: unknown network ${e.networkId}`);
  const addressInt = ipv4ToInt(e.address);
  const address = intToIpv4(addressInt);
  if (!network.pools.some((p) => p.first <= addressInt && addressInt <= p.last)) {
    throw new FirewallModelError(`endpoint ${e.id}: address ${address} is outside the pools of network ${network.id}`);
  }
  return {
    id: e.id,
    hostIf: hostIf(e.hostIf),
    address,
    addressInt,
    network,
    exposures: e.exposures.map((x) => planExposure(x, e.id)).sort(byExposure),
  };
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
export function checkDnatConflicts(endpoints: EndpointPlan[]): void {
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

function sortedPools(pools: Cidr4[]): string[] {
  return [...pools].sort((a, b) => a.first - b.first).map((p) => p.text);
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
