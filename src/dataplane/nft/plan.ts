import type { Proto } from '../../expose/types.js';
import type { FirewallEndpoint, FirewallModel, FirewallNetwork, ResolvedExposure } from '../model.js';
import {
  FirewallModelError,
  anyCidr,
  cidr4,
  cidr6,
  hostIf,
  hostIp,
  ifaceName,
  intToIpv4,
  ipv4,
  ipv4ToInt,
  ipv6,
  ipv6SortKey,
  isIpv6,
  isLoopbackIp,
  port,
  proto,
  type AnyCidr,
  type Cidr4,
  type Family,
} from './syntax.js';

/**
 * The policy decisions of DESIGN §2, as data: which set or map every exposure and endpoint lands in,
 * once per address family. Pure and deterministic (everything sorted), so the rendered text is a
 * stable function of the model.
 */

export type { Family } from './syntax.js';

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

/** A ServiceKey open to one source range only (exposures with an allowlist, direct path). */
export interface SourcedServiceKey extends ServiceKey {
  /** Element text of the source range (see sourceRangeText). */
  source: string;
}

/** Which host addresses a DNAT entry or guard key is for. */
export type HostSide = 'any' | 'bound' | 'iface';

/** The host side of an exposure with an allowlist: `proto . port`, with an address or interface before. */
export interface GuardKey {
  side: HostSide;
  /** Host address (bound) or interface name (iface); undefined for any. */
  host?: string;
  proto: Proto;
  port: number;
}

/** One source range that may use a guarded host port. */
export interface AllowKey extends GuardKey {
  source: string;
}

/** One host port translated to one container port (ranges are expanded port by port). */
export interface DnatEntry {
  /** Set for exposures bound to one host address (loopback included). */
  hostIp?: string;
  /** Set for exposures bound to a host interface. */
  hostIface?: string;
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
  pools6: AnyCidr[];
  icc: boolean;
  masquerade: boolean;
}

/**
 * all: every host address of a family; bound: one host address; loopback: 127.0.0.0/8 or ::1;
 * iface: every address of one host interface; skipped: applies to no family the endpoint has.
 */
export type ExposureKind = 'all' | 'bound' | 'loopback' | 'iface' | 'skipped';

export interface ExposurePlan {
  exposure: ResolvedExposure;
  kind: ExposureKind;
  /** Families the exposure is applied in: its host side covers them and the endpoint has an address there. */
  families: Family[];
  /**
   * Per family, the source ranges that may use it (element texts, disjoint, sorted); no entry means
   * any source. An empty list refuses every source of that family (an allowlist of the other one).
   */
  allow: Partial<Record<Family, string[]>>;
  /** Docker-style `HOST_IP:HOST_PORT->CONTAINER_PORT/PROTO`, `@SOURCES` appended. */
  text: string;
}

export interface EndpointPlan {
  id: string;
  hostIf: string;
  address: string;
  /** `address` as a number, for sorting without parsing it again. */
  addressInt: number;
  address6?: string;
  /** `address6` as 32 hex digits, for sorting. */
  address6Key?: string;
  /** The container's addresses on its other portnet endpoints, per family (anti-spoofing admits them). */
  siblings4: string[];
  siblings6: string[];
  network: NetworkPlan;
  exposures: ExposurePlan[];
}

/** Everything one endpoint puts in the sets and maps of one family (see endpointParts). */
export interface FamilyParts {
  /** Allowed on the container address from anywhere (exposures on all host addresses). */
  exposedDirect: ServiceKey[];
  /** Allowed on the container address from some sources (all-address exposures with an allowlist). */
  exposedDirectFrom: SourcedServiceKey[];
  /** Allowed once DNATed (all-address, host-IP-bound and interface-bound exposures). */
  exposedDnat: ServiceKey[];
  /** Host-side keys of loopback-bound exposures. */
  loopbackExposures: ServiceKey[];
  /** Whether the endpoint can reach itself through a host address (needs SNAT). */
  hairpinSelf: boolean;
  dnatAny: DnatEntry[];
  dnatBound: DnatEntry[];
  dnatIface: DnatEntry[];
  /** Host-side keys of exposures with an allowlist, and the sources each allows. */
  guards: GuardKey[];
  allows: AllowKey[];
}

export interface EndpointParts {
  v4: FamilyParts;
  v6: FamilyParts;
}

/** The contents of one family's sets and maps. */
export interface FamilyPlan {
  family: Family;
  pools: string[];
  masqueradePools: string[];
  /** `source pool . destination pool` pairs that may talk on any port (icc on). */
  iccPairs: [string, string][];
  /** `hostIf . address`: the only source a `pn` veth may send from. */
  endpointSources: { hostIf: string; address: string }[];
  /** Reachable directly on the container address, from anywhere. */
  exposedDirect: ServiceKey[];
  /** Reachable directly on the container address from one source range. */
  exposedDirectFrom: SourcedServiceKey[];
  /** Reachable once DNATed by portnet (every exposure but loopback-bound ones). */
  exposedDnat: ServiceKey[];
  /** Host-side keys of loopback-bound exposures; packets for them from other interfaces drop. */
  loopbackExposures: ServiceKey[];
  /** Endpoints that can reach themselves through a host address and so need SNAT for it. */
  hairpinSelf: string[];
  dnatAny: EndpointGroup<DnatEntry>[];
  dnatBound: EndpointGroup<DnatEntry>[];
  dnatIface: EndpointGroup<DnatEntry>[];
  guards: GuardKey[];
  allows: AllowKey[];
}

/**
 * The whole table. IPv4's sets are at the top level, as before dual-stack (every endpoint has an
 * IPv4 address); IPv6's, with the same shapes, in `v6`.
 */
export interface RulesetPlan extends FamilyPlan {
  networks: NetworkPlan[];
  endpoints: EndpointPlan[];
  v6: FamilyPlan;
}

const PROTO_ORDER: Record<Proto, number> = { tcp: 0, udp: 1, sctp: 2 };

export function planRuleset(model: FirewallModel): RulesetPlan {
  const networks = planNetworks(model.networks);
  const endpoints = planEndpoints(model.endpoints, networks);
  checkDnatConflicts(endpoints);
  const parts = endpoints.map(endpointParts);
  const v4 = planFamily(4, networks, endpoints, parts);
  return { ...v4, networks, endpoints, v6: planFamily(6, networks, endpoints, parts) };
}

function planFamily(family: Family, networks: NetworkPlan[], endpoints: EndpointPlan[], allParts: EndpointParts[]): FamilyPlan {
  const exposedDirect: Keyed<ServiceKey>[] = [];
  const exposedDirectFrom: Keyed<SourcedServiceKey>[] = [];
  const exposedDnat: Keyed<ServiceKey>[] = [];
  const loopbackExposures: Keyed<ServiceKey>[] = [];
  const hairpinSelf: Keyed<string>[] = [];
  const dnatAny: EndpointGroup<DnatEntry>[] = [];
  const dnatBound: EndpointGroup<DnatEntry>[] = [];
  const dnatIface: EndpointGroup<DnatEntry>[] = [];
  const guards: GuardKey[] = [];
  const allows: AllowKey[] = [];
  const endpointSources: Keyed<{ hostIf: string; address: string }>[] = [];

  endpoints.forEach((ep, i) => {
    const address = family === 4 ? ep.address : ep.address6;
    if (address === undefined) return;
    const n = family === 4 ? ep.addressInt : ep.address6Key!;
    const parts = family === 4 ? allParts[i]!.v4 : allParts[i]!.v6;
    endpointSources.push({ n: ep.hostIf, k: { hostIf: ep.hostIf, address } });
    for (const sibling of family === 4 ? ep.siblings4 : ep.siblings6) endpointSources.push({ n: ep.hostIf, k: { hostIf: ep.hostIf, address: sibling } });
    for (const k of parts.exposedDirect) exposedDirect.push({ n, k });
    for (const k of parts.exposedDirectFrom) exposedDirectFrom.push({ n, k });
    for (const k of parts.exposedDnat) exposedDnat.push({ n, k });
    for (const k of parts.loopbackExposures) loopbackExposures.push({ n: addressSortKey(k.address), k });
    if (parts.hairpinSelf) hairpinSelf.push({ n, k: address });
    const group = (items: DnatEntry[], into: EndpointGroup<DnatEntry>[]) => {
      if (items.length > 0) into.push({ hostIf: ep.hostIf, address, items });
    };
    group(parts.dnatAny, dnatAny);
    group(parts.dnatBound, dnatBound);
    group(parts.dnatIface, dnatIface);
    guards.push(...parts.guards);
    allows.push(...parts.allows);
  });

  const familyPools = (n: NetworkPlan): (Cidr4 | AnyCidr)[] => (family === 4 ? n.pools : n.pools6);
  const pools = sortedPools(family, networks.flatMap(familyPools));
  const iccPairs: [string, string][] = [];
  for (const net of networks) {
    if (!net.icc) continue;
    const own = familyPools(net);
    for (const from of own) for (const to of own) iccPairs.push([from.text, to.text]);
  }
  return {
    family,
    pools,
    masqueradePools: sortedPools(family, networks.filter((n) => n.masquerade).flatMap(familyPools)),
    iccPairs,
    endpointSources: sortKeyed(endpointSources),
    exposedDirect: sortServiceKeys(exposedDirect),
    exposedDirectFrom: sortServiceKeys(exposedDirectFrom),
    exposedDnat: sortServiceKeys(exposedDnat),
    loopbackExposures: sortServiceKeys(loopbackExposures),
    // Endpoints are sorted by network, then address; the set by address alone.
    hairpinSelf: sortKeyed(hairpinSelf),
    dnatAny,
    dnatBound,
    dnatIface,
    guards: guards.sort(byGuard),
    // Stable: each endpoint's sources are in numeric order already, and guard keys are unique.
    allows: allows.sort(byGuard),
  };
}

/** What an endpoint without an address in a family contributes there; shared, so never mutated. */
const NO_PARTS: FamilyParts = Object.freeze({
  exposedDirect: Object.freeze([]) as never[],
  exposedDirectFrom: Object.freeze([]) as never[],
  exposedDnat: Object.freeze([]) as never[],
  loopbackExposures: Object.freeze([]) as never[],
  hairpinSelf: false,
  dnatAny: Object.freeze([]) as never[],
  dnatBound: Object.freeze([]) as never[],
  dnatIface: Object.freeze([]) as never[],
  guards: Object.freeze([]) as never[],
  allows: Object.freeze([]) as never[],
});

/**
 * What one endpoint contributes to the sets and maps. It depends on the endpoint alone (never on
 * other endpoints or on its network's settings), which is what lets the firewall apply a change as
 * a delta: the elements of an endpoint that did not change are the elements it had.
 */
export function endpointParts(ep: EndpointPlan): EndpointParts {
  return {
    v4: familyParts(ep, 4, ep.address),
    v6: ep.address6 === undefined ? NO_PARTS : familyParts(ep, 6, ep.address6),
  };
}

function familyParts(ep: EndpointPlan, family: Family, address: string): FamilyParts {
  const direct = new Map<string, ServiceKey>();
  /** Container port → the sources allowed on it through the direct path (merged over exposures). */
  const directFrom = new Map<string, { key: ServiceKey; sources: AnyCidr[] }>();
  const dnat = new Map<string, ServiceKey>();
  const loopback = new Map<string, ServiceKey>();
  const any: DnatEntry[] = [];
  const bound: DnatEntry[] = [];
  const iface: DnatEntry[] = [];
  const guards: GuardKey[] = [];
  const allows: AllowKey[] = [];
  let hairpinSelf = false;
  const add = (into: Map<string, ServiceKey>, at: string, proto: Proto, first: number, last: number) => {
    for (let p = first; p <= last; p++) {
      const id = `${proto} ${p}`;
      if (!into.has(id)) into.set(id, { address: at, proto, ports: { first: p, last: p } });
    }
  };
  for (const plan of ep.exposures) {
    const { exposure: x, kind } = plan;
    if (!plan.families.includes(family)) continue;
    const allow = plan.allow[family];
    const entries = expand(x, address, kind);
    if (kind === 'loopback') {
      // Not in exposedDnat: only the host's own processes may use it, and they never pass forward.
      add(loopback, x.hostIp as string, x.proto, x.hostPort, x.hostPortEnd);
      bound.push(...entries);
      continue;
    }
    add(dnat, address, x.proto, x.containerPort, x.containerPortEnd);
    if (kind === 'all') {
      any.push(...entries);
      hairpinSelf = true;
      if (allow === undefined) {
        add(direct, address, x.proto, x.containerPort, x.containerPortEnd);
      } else {
        for (let p = x.containerPort; p <= x.containerPortEnd; p++) {
          const id = `${x.proto} ${p}`;
          let slot = directFrom.get(id);
          if (!slot) directFrom.set(id, (slot = { key: { address, proto: x.proto, ports: { first: p, last: p } }, sources: [] }));
          for (const s of allow) slot.sources.push(anyCidr(s, 'source'));
        }
      }
    } else if (kind === 'bound') {
      bound.push(...entries);
      hairpinSelf = true;
    } else {
      // A container's packets arrive on its pn veth, never on the bound interface: no hairpin.
      iface.push(...entries);
    }
    if (allow !== undefined) {
      const side: HostSide = kind === 'all' ? 'any' : kind === 'bound' ? 'bound' : 'iface';
      const host = kind === 'bound' ? x.hostIp : kind === 'iface' ? x.hostIface : undefined;
      for (let p = x.hostPort; p <= x.hostPortEnd; p++) {
        const guard: GuardKey = { side, ...(host !== undefined ? { host } : {}), proto: x.proto, port: p };
        guards.push(guard);
        for (const source of allow) allows.push({ ...guard, source });
      }
    }
  }
  const exposedDirectFrom: SourcedServiceKey[] = [];
  for (const [id, { key, sources }] of directFrom) {
    // A port open to anyone through another exposure needs no source list.
    if (direct.has(id)) continue;
    for (const s of disjoint(sources)) exposedDirectFrom.push({ ...key, source: sourceRangeText(s) });
  }
  const byKey = (a: ServiceKey, b: ServiceKey) =>
    cmp(a.address, b.address) || PROTO_ORDER[a.proto] - PROTO_ORDER[b.proto] || a.ports.first - b.ports.first;
  return {
    exposedDirect: [...direct.values()].sort(byKey),
    exposedDirectFrom: exposedDirectFrom.sort((a, b) => byKey(a, b)),
    exposedDnat: [...dnat.values()].sort(byKey),
    loopbackExposures: [...loopback.values()].sort(byKey),
    hairpinSelf,
    dnatAny: any.sort(byDnatKey),
    dnatBound: bound.sort(byDnatKey),
    dnatIface: iface.sort(byDnatKey),
    guards: guards.sort(byGuard),
    allows: allows.sort((a, b) => byGuard(a, b)),
  };
}

/** A value with a key to sort it by (an address parsed once, not in every comparison). */
interface Keyed<T> {
  /** A number for IPv4, 32 hex digits for IPv6, a name otherwise: never mixed within one list. */
  n: number | string;
  k: T;
}

function byN(a: Keyed<unknown>, b: Keyed<unknown>): number {
  return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

function sortKeyed<T>(keys: Keyed<T>[]): T[] {
  return keys.sort(byN).map((x) => x.k);
}

function sortServiceKeys<T extends ServiceKey>(keys: Keyed<T>[]): T[] {
  return keys
    .sort((a, b) => byN(a, b) || PROTO_ORDER[a.k.proto] - PROTO_ORDER[b.k.proto] || a.k.ports.first - b.k.ports.first)
    .map((x) => x.k);
}

function addressSortKey(address: string): number | string {
  return isIpv6(address) ? ipv6SortKey(address) : ipv4ToInt(address);
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
        pools6: (n.pools6 ?? []).map(cidr6).sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0)),
        icc: n.icc,
        masquerade: n.masquerade,
      };
    })
    .sort((a, b) => a.index - b.index || cmp(a.id, b.id));
  unique(networks.map((n) => n.id), 'network id');
  unique(networks.map((n) => String(n.index)), 'network index');

  // Overlapping pools would make "same network" ambiguous and the interval sets invalid.
  const all = networks
    .flatMap((n) => [
      ...n.pools.map((p) => ({ net: n, text: p.text, first: BigInt(p.first), last: BigInt(p.last), family: 4 })),
      ...n.pools6.map((p) => ({ net: n, text: p.text, first: p.first, last: p.last, family: 6 })),
    ])
    .sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  for (let i = 1; i < all.length; i++) {
    const prev = all[i - 1]!;
    const cur = all[i]!;
    if (cur.family === prev.family && cur.first <= prev.last) {
      throw new FirewallModelError(`pool ${cur.text} of network ${cur.net.id} overlaps pool ${prev.text} of network ${prev.net.id}`);
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
  unique(endpoints.flatMap((e) => (e.address6 === undefined ? [] : [e.address6])), 'endpoint IPv6 address');
  return endpoints.sort((a, b) => a.network.index - b.network.index || a.addressInt - b.addressInt);
}

/** One endpoint, checked on its own: interface name, addresses inside its network's pools, exposures. */
export function planEndpoint(e: FirewallEndpoint, networks: ReadonlyMap<string, NetworkPlan>): EndpointPlan {
  const network = networks.get(e.networkId);
  if (!network) throw new FirewallModelError(`endpoint ${e.id}: unknown network ${e.networkId}`);
  const addressInt = ipv4ToInt(e.address);
  const address = intToIpv4(addressInt);
  if (!network.pools.some((p) => p.first <= addressInt && addressInt <= p.last)) {
    throw new FirewallModelError(`endpoint ${e.id}: address ${address} is outside the pools of network ${network.id}`);
  }
  const plan: EndpointPlan = { id: e.id, hostIf: hostIf(e.hostIf), address, addressInt, siblings4: [], siblings6: [], network, exposures: [] };
  for (const s of e.siblings ?? []) {
    if (isIpv6(s)) plan.siblings6.push(ipv6(s));
    else plan.siblings4.push(ipv4(s));
  }
  plan.siblings4.sort((a, b) => ipv4ToInt(a) - ipv4ToInt(b));
  plan.siblings6.sort((a, b) => cmp(ipv6SortKey(a), ipv6SortKey(b)));
  if (e.address6 !== undefined) {
    const address6 = ipv6(e.address6);
    const value = BigInt(`0x${ipv6SortKey(address6)}`);
    if (!network.pools6.some((p) => p.first <= value && value <= p.last)) {
      throw new FirewallModelError(`endpoint ${e.id}: IPv6 address ${address6} is outside the IPv6 pools of network ${network.id}`);
    }
    plan.address6 = address6;
    plan.address6Key = ipv6SortKey(address6);
  }
  plan.exposures = e.exposures.map((x) => planExposure(x, e.id, plan.address6 !== undefined)).sort(byExposure);
  return plan;
}

function planExposure(input: ResolvedExposure, endpointId: string, hasV6: boolean): ExposurePlan {
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
  let covers: Family[];
  const host = input.hostIp;
  if (input.hostIface !== undefined) {
    if (host !== undefined) throw new FirewallModelError(`${where}: an exposure is bound to a host IP or an interface, not both`);
    x.hostIface = ifaceName(input.hostIface);
    kind = 'iface';
    covers = [4, 6];
  } else if (host === undefined || host === '') {
    kind = 'all';
    covers = [4, 6];
  } else {
    x.hostIp = hostIp(host);
    const v6 = isIpv6(x.hostIp);
    covers = [v6 ? 6 : 4];
    kind = x.hostIp === '0.0.0.0' || x.hostIp === '::' ? 'all' : isLoopbackIp(x.hostIp) ? 'loopback' : 'bound';
  }
  const families = covers.filter((f) => f === 4 || hasV6);
  if (families.length === 0) kind = 'skipped';
  const allow: Partial<Record<Family, string[]>> = {};
  if (input.sources !== undefined) {
    const sources = input.sources.map((s) => anyCidr(s, `${where}: source`));
    // The host's own processes are never filtered, and nothing else may use a loopback exposure:
    // a network's default allowlist does not apply to it.
    if (kind !== 'loopback') {
      x.sources = sources.map((s) => s.text);
      for (const f of families) {
        const own = sources.filter((s) => s.family === f);
        if (!own.some((s) => s.prefix === 0)) allow[f] = disjoint(own).map(sourceRangeText);
      }
    }
  }
  return { exposure: x, kind, families, allow, text: exposureText(x) };
}

/**
 * The ranges that are not inside another one. Two CIDRs are either disjoint or nested, so what is
 * left is disjoint: the kernel refuses overlapping elements in a concatenated interval set.
 */
function disjoint(cidrs: AnyCidr[]): AnyCidr[] {
  // Widest first among ranges that start together, so the nested ones are the ones dropped.
  const sorted = [...cidrs].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : a.prefix - b.prefix));
  const out: AnyCidr[] = [];
  for (const c of sorted) {
    const last = out[out.length - 1];
    if (last && c.first <= last.last) continue;
    out.push(c);
  }
  return out;
}

/** A source range as set elements write it: one address bare, as nft lists it. */
export function sourceRangeText(c: AnyCidr): string {
  return c.prefix === (c.family === 4 ? 32 : 128) ? c.text.slice(0, c.text.indexOf('/')) : c.text;
}

export function exposureText(x: ResolvedExposure): string {
  const range = (a: number, b: number) => (a === b ? String(a) : `${a}-${b}`);
  const host =
    x.hostIface !== undefined ? `%${x.hostIface}` : x.hostIp === undefined ? '*' : isIpv6(x.hostIp) ? `[${x.hostIp}]` : x.hostIp;
  const any = x.sources?.includes('0.0.0.0/0') && x.sources.includes('::/0');
  const from = x.sources === undefined ? '' : any ? '@any' : `@${x.sources.join('+')}`;
  return `${host}:${range(x.hostPort, x.hostPortEnd)}->${range(x.containerPort, x.containerPortEnd)}/${x.proto}${from}`;
}

function expand(x: ResolvedExposure, address: string, kind: ExposureKind): DnatEntry[] {
  const out: DnatEntry[] = [];
  for (let offset = 0; offset <= x.hostPortEnd - x.hostPort; offset++) {
    const entry: DnatEntry = {
      proto: x.proto,
      hostPort: x.hostPort + offset,
      address,
      containerPort: x.containerPort + offset,
    };
    if (kind === 'bound' || kind === 'loopback') entry.hostIp = x.hostIp as string;
    if (kind === 'iface') entry.hostIface = x.hostIface as string;
    out.push(entry);
  }
  return out;
}

/**
 * One host port an endpoint holds in one family. `key` is unique to the claim: `a F PROTO PORT` on
 * every address, `b F PROTO PORT IP` on one address, `l …` the same for a loopback one,
 * `i F PROTO PORT IFNAME` on one interface. `port` is `F PROTO PORT`, where different claims meet.
 */
export interface Claim {
  kind: 'a' | 'b' | 'l' | 'i';
  key: string;
  port: string;
}

/** The host ports an endpoint holds, as checkDnatConflicts sees them. */
export function claimKeys(ep: EndpointPlan): Claim[] {
  const out: Claim[] = [];
  for (const { exposure: x, kind, families } of ep.exposures) {
    if (kind === 'skipped') continue;
    const k = kind === 'all' ? 'a' : kind === 'bound' ? 'b' : kind === 'loopback' ? 'l' : 'i';
    const host = kind === 'all' ? '' : ` ${kind === 'iface' ? x.hostIface : x.hostIp}`;
    for (const f of families) {
      for (let p = x.hostPort; p <= x.hostPortEnd; p++) {
        const port = `${f} ${x.proto} ${p}`;
        out.push({ kind: k, key: `${k} ${port}${host}`, port });
      }
    }
  }
  return out;
}

/**
 * Claims on one port that two holders cannot both have, besides the very same claim: every address
 * of a family covers any single address and interface; an interface may own any address but a
 * loopback one (prerouting DNAT by interface never sees the host's own loopback traffic).
 */
export function claimsClash(a: Claim, b: Claim): boolean {
  if (a.kind === 'a' || b.kind === 'a') return true;
  return (a.kind === 'b' && b.kind === 'i') || (a.kind === 'i' && b.kind === 'b') || a.key === b.key;
}

/** A claim as error messages show it: `198.51.100.1:8080/tcp`, `[::]:8080/tcp`, `%eth0:8080/tcp`. */
function claimText(claim: Claim): string {
  const [, family, protoText, portText, host] = claim.key.split(' ') as [string, string, string, string, string | undefined];
  const k = claim.kind;
  const at = k === 'a' ? (family === '6' ? '[::]:' : '') : k === 'i' ? `%${host}:` : isIpv6(host!) ? `[${host}]:` : `${host}:`;
  return `${at}${portText}/${protoText}`;
}

function claimWhere(claim: Claim): string {
  const [, family, , , host] = claim.key.split(' ');
  if (claim.kind === 'a') return `on all ${family === '6' ? 'IPv6 ' : ''}addresses`;
  if (claim.kind === 'i') return `on interface ${host}${family === '6' ? ' (IPv6)' : ''}`;
  return `on ${host}`;
}

/**
 * Upstream conflict checks should make this unreachable, but a map cannot hold two values for one
 * key, two maps must never both match one packet, and the firewall must never pick one silently:
 * fail loudly, naming both holders.
 */
export function checkDnatConflicts(endpoints: EndpointPlan[]): void {
  const exact = new Map<string, string>();
  /** Port → its first claim, then a list once a second one comes (most ports have one holder). */
  const byPort = new Map<string, { claim: Claim; holder: string } | { claim: Claim; holder: string }[]>();
  for (const ep of endpoints) {
    const holder = `endpoint ${ep.id}`;
    for (const claim of claimKeys(ep)) {
      const previous = exact.get(claim.key);
      if (previous !== undefined) {
        throw new FirewallModelError(`host port ${claimText(claim)} is exposed by both ${previous} and ${holder}`);
      }
      exact.set(claim.key, holder);
      const mine = { claim, holder };
      const seen = byPort.get(claim.port);
      if (seen === undefined) {
        byPort.set(claim.port, mine);
        continue;
      }
      const list = Array.isArray(seen) ? seen : [seen];
      for (const other of list) {
        if (claimsClash(other.claim, claim)) {
          const [, , protoText, portText] = claim.key.split(' ');
          throw new FirewallModelError(
            `host port ${portText}/${protoText} is exposed ${claimWhere(other.claim)} by ${other.holder} and ${claimWhere(claim)} by ${holder}`,
          );
        }
      }
      list.push(mine);
      byPort.set(claim.port, list);
    }
  }
}

function sortedPools(family: Family, pools: (Cidr4 | AnyCidr)[]): string[] {
  return [...pools]
    .sort((a, b) => (family === 4 ? Number(a.first) - Number(b.first) : a.first < b.first ? -1 : a.first > b.first ? 1 : 0))
    .map((p) => p.text);
}

function byDnatKey(a: DnatEntry, b: DnatEntry): number {
  return (
    cmp(a.hostIface ?? '', b.hostIface ?? '') ||
    cmp(hostSortKey(a.hostIp), hostSortKey(b.hostIp)) ||
    PROTO_ORDER[a.proto] - PROTO_ORDER[b.proto] ||
    a.hostPort - b.hostPort
  );
}

/** Sorts host IPs numerically within a family, by text across (a list never mixes families). */
function hostSortKey(ip: string | undefined): string {
  if (ip === undefined) return '';
  return isIpv6(ip) ? ipv6SortKey(ip) : ipv4ToInt(ip).toString(16).padStart(8, '0');
}

function byGuard(a: GuardKey, b: GuardKey): number {
  return (
    cmp(a.side, b.side) ||
    cmp(a.side === 'iface' ? (a.host ?? '') : hostSortKey(a.host), b.side === 'iface' ? (b.host ?? '') : hostSortKey(b.host)) ||
    PROTO_ORDER[a.proto] - PROTO_ORDER[b.proto] ||
    a.port - b.port
  );
}

function byExposure(a: ExposurePlan, b: ExposurePlan): number {
  return (
    PROTO_ORDER[a.exposure.proto] - PROTO_ORDER[b.exposure.proto] ||
    cmp(a.exposure.hostIface ?? '', b.exposure.hostIface ?? '') ||
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
