import type {
  AllowKey,
  DnatEntry,
  EndpointParts,
  EndpointPlan,
  FamilyParts,
  FamilyPlan,
  GuardKey,
  RulesetPlan,
  ServiceKey,
  SourcedServiceKey,
} from './plan.js';
import { endpointParts } from './plan.js';
import type { Family } from './syntax.js';

/**
 * The sets and maps of portnet's table and the text of their elements. Both the full ruleset
 * (render.ts) and the deltas of an incremental apply (incremental.ts) take their element text from
 * here, so a delta always names elements exactly as the full ruleset wrote them.
 */

export type BaseSetName =
  | 'pools'
  | 'masquerade_pools'
  | 'endpoint_sources'
  | 'icc_pairs'
  | 'exposed_direct'
  | 'exposed_direct_from'
  | 'exposed_dnat'
  | 'loopback_exposures'
  | 'hairpin_self'
  | 'guard_any'
  | 'allow_any'
  | 'guard_bound'
  | 'allow_bound'
  | 'guard_iface'
  | 'allow_iface'
  | 'dnat_any'
  | 'dnat_bound'
  | 'dnat_iface';

/** IPv4 sets have the base name, IPv6 ones the same name with `6` appended. */
export type SetName = BaseSetName | `${BaseSetName}6`;

export interface SetSpec {
  name: SetName;
  family: Family;
  kind: 'set' | 'map';
  why: string;
  type: string;
  interval: boolean;
}

/** `ADDR` in a type stands for the family's address type. */
interface BaseSpec {
  name: BaseSetName;
  kind: 'set' | 'map';
  why: string;
  type: string;
  interval: boolean;
}

/*
 * Interval sets with a concatenated key (allow_*, exposed_direct_from) are the kernel's pipapo
 * sets: lookups stay fast, but every delete rebuilds the set's lookup tables, in time that grows
 * with the set (scripts/bench/README.md). They hold only exposures that have an allowlist, which
 * need ranges of sources; everything else stays in plain hash sets, so a host without allowlists
 * pays nothing for them, and one with allowlists pays per element of the allowlisted exposures.
 */
const BASE_SETS: readonly BaseSpec[] = [
  { name: 'pools', kind: 'set', why: 'Every pool of every portnet network.', type: 'ADDR', interval: true },
  {
    name: 'masquerade_pools',
    kind: 'set',
    why: 'Pools whose traffic is masqueraded when it leaves through a non-pn interface.',
    type: 'ADDR',
    interval: true,
  },
  {
    name: 'endpoint_sources',
    kind: 'set',
    why: 'The only source address each pn veth may send from (anti-spoofing).',
    type: 'ifname . ADDR',
    interval: false,
  },
  {
    name: 'icc_pairs',
    kind: 'set',
    why: 'Source pool . destination pool that may talk on any port (networks with icc on).',
    type: 'ADDR . ADDR',
    interval: true,
  },
  {
    name: 'exposed_direct',
    kind: 'set',
    why: 'Container address . protocol . port of exposures on all host addresses: open from anywhere.',
    type: 'ADDR . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'exposed_direct_from',
    kind: 'set',
    why: 'Container address . protocol . port . source range of all-address exposures with an allowlist: open to those sources.',
    type: 'ADDR . inet_proto . inet_service . ADDR',
    interval: true,
  },
  {
    name: 'exposed_dnat',
    kind: 'set',
    why: 'Container address . protocol . port that may be reached once portnet has DNATed to it.',
    type: 'ADDR . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'loopback_exposures',
    kind: 'set',
    why: "Loopback-bound exposures (host address . protocol . port): for the host's own processes only.",
    type: 'ADDR . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'hairpin_self',
    kind: 'set',
    why: 'Container . itself: reaching its own exposure through a host address needs SNAT.',
    type: 'ADDR . ADDR',
    interval: false,
  },
  {
    name: 'guard_any',
    kind: 'set',
    why: 'Exposures on all host addresses that have an allowlist: protocol . host port.',
    type: 'inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'allow_any',
    kind: 'set',
    why: 'Sources allowed on all-address exposures with an allowlist: protocol . host port . source range.',
    type: 'inet_proto . inet_service . ADDR',
    interval: true,
  },
  {
    name: 'guard_bound',
    kind: 'set',
    why: 'Exposures bound to one host address that have an allowlist: address . protocol . host port.',
    type: 'ADDR . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'allow_bound',
    kind: 'set',
    why: 'Sources allowed on address-bound exposures with an allowlist: address . protocol . host port . source range.',
    type: 'ADDR . inet_proto . inet_service . ADDR',
    interval: true,
  },
  {
    name: 'guard_iface',
    kind: 'set',
    why: 'Exposures bound to a host interface that have an allowlist: interface . protocol . host port.',
    type: 'ifname . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'allow_iface',
    kind: 'set',
    why: 'Sources allowed on interface-bound exposures with an allowlist: interface . protocol . host port . source range.',
    type: 'ifname . inet_proto . inet_service . ADDR',
    interval: true,
  },
  {
    name: 'dnat_any',
    kind: 'map',
    why: 'Exposures on all host addresses: protocol . host port -> container address . port.',
    type: 'inet_proto . inet_service : ADDR . inet_service',
    interval: false,
  },
  {
    name: 'dnat_bound',
    kind: 'map',
    why: 'Exposures bound to one host address: address . protocol . host port -> container address . port.',
    type: 'ADDR . inet_proto . inet_service : ADDR . inet_service',
    interval: false,
  },
  {
    name: 'dnat_iface',
    kind: 'map',
    why: 'Exposures bound to a host interface: interface . protocol . host port -> container address . port.',
    type: 'ifname . inet_proto . inet_service : ADDR . inet_service',
    interval: false,
  },
];

/** The name of a set in a family: `pools` / `pools6`. */
export function setName(base: BaseSetName, family: Family): SetName {
  return family === 4 ? base : `${base}6`;
}

/** Every set and map, in the order the ruleset declares them: each IPv4 one followed by its IPv6 twin. */
export const SETS: readonly SetSpec[] = BASE_SETS.flatMap((b) =>
  ([4, 6] as const).map(
    (family): SetSpec => ({
      name: setName(b.name, family),
      family,
      kind: b.kind,
      why: family === 4 ? b.why : `IPv6: ${b.why.charAt(0).toLowerCase()}${b.why.slice(1)}`,
      type: b.type.replaceAll('ADDR', family === 4 ? 'ipv4_addr' : 'ipv6_addr'),
      interval: b.interval,
    }),
  ),
);

/** One element: `key` of a set, or `key : value` of a map. */
export interface Element {
  set: SetName;
  key: string;
  /** Maps only. */
  value?: string;
}

/** The element as the ruleset writes it. */
export function elementText(e: Element): string {
  return e.value === undefined ? e.key : `${e.key} : ${e.value}`;
}

/** Identity of an element, value included (a map key that moves to another value is a delete and an add). */
export function elementId(e: Element): string {
  return e.value === undefined ? `${e.set} ${e.key}` : `${e.set} ${e.key} : ${e.value}`;
}

export function serviceText(k: ServiceKey): string {
  const ports = k.ports.first === k.ports.last ? String(k.ports.first) : `${k.ports.first}-${k.ports.last}`;
  return `${k.address} . ${k.proto} . ${ports}`;
}

export function sourcedServiceText(k: SourcedServiceKey): string {
  return `${serviceText(k)} . ${k.source}`;
}

export function sourceText(s: { hostIf: string; address: string }): string {
  return `"${s.hostIf}" . ${s.address}`;
}

export function hairpinText(address: string): string {
  return `${address} . ${address}`;
}

/** The host side as the guard sets and DNAT maps key it: `tcp . 80`, `198.51.100.1 . tcp . 80`, `"eth0" . tcp . 80`. */
function hostKeyText(side: GuardKey['side'], host: string | undefined, proto: string, port: number): string {
  const prefix = side === 'any' ? '' : side === 'iface' ? `"${host}" . ` : `${host} . `;
  return `${prefix}${proto} . ${port}`;
}

export function guardElement(g: GuardKey, family: Family): Element {
  return { set: setName(`guard_${g.side}`, family), key: hostKeyText(g.side, g.host, g.proto, g.port) };
}

export function allowElement(a: AllowKey, family: Family): Element {
  return { set: setName(`allow_${a.side}`, family), key: `${hostKeyText(a.side, a.host, a.proto, a.port)} . ${a.source}` };
}

export function dnatAnyElement(e: DnatEntry, family: Family = 4): Element {
  return { set: setName('dnat_any', family), key: hostKeyText('any', undefined, e.proto, e.hostPort), value: `${e.address} . ${e.containerPort}` };
}

/** Loopback-bound exposures included: they are bound to one (loopback) address. */
export function dnatBoundElement(e: DnatEntry, family: Family = 4): Element {
  return { set: setName('dnat_bound', family), key: hostKeyText('bound', e.hostIp, e.proto, e.hostPort), value: `${e.address} . ${e.containerPort}` };
}

export function dnatIfaceElement(e: DnatEntry, family: Family = 4): Element {
  return { set: setName('dnat_iface', family), key: hostKeyText('iface', e.hostIface, e.proto, e.hostPort), value: `${e.address} . ${e.containerPort}` };
}

/** The elements that come from the networks (pools, masquerading, icc). */
export function networkElements(plan: Pick<RulesetPlan, 'pools' | 'masqueradePools' | 'iccPairs' | 'v6'>): Element[] {
  const out: Element[] = [];
  for (const [family, f] of [[4, plan], [6, plan.v6]] as const) {
    out.push(
      ...f.pools.map((key): Element => ({ set: setName('pools', family), key })),
      ...f.masqueradePools.map((key): Element => ({ set: setName('masquerade_pools', family), key })),
      ...f.iccPairs.map(([a, b]): Element => ({ set: setName('icc_pairs', family), key: `${a} . ${b}` })),
    );
  }
  return out;
}

function familyElements(family: Family, address: string, siblings: string[], hostIf: string, parts: FamilyParts, out: Element[]): void {
  const set = (base: BaseSetName) => setName(base, family);
  out.push({ set: set('endpoint_sources'), key: sourceText({ hostIf, address }) });
  for (const s of siblings) out.push({ set: set('endpoint_sources'), key: sourceText({ hostIf, address: s }) });
  for (const k of parts.exposedDirect) out.push({ set: set('exposed_direct'), key: serviceText(k) });
  for (const k of parts.exposedDirectFrom) out.push({ set: set('exposed_direct_from'), key: sourcedServiceText(k) });
  for (const k of parts.exposedDnat) out.push({ set: set('exposed_dnat'), key: serviceText(k) });
  for (const k of parts.loopbackExposures) out.push({ set: set('loopback_exposures'), key: serviceText(k) });
  if (parts.hairpinSelf) out.push({ set: set('hairpin_self'), key: hairpinText(address) });
  for (const g of parts.guards) out.push(guardElement(g, family));
  for (const a of parts.allows) out.push(allowElement(a, family));
  for (const e of parts.dnatAny) out.push(dnatAnyElement(e, family));
  for (const e of parts.dnatBound) out.push(dnatBoundElement(e, family));
  for (const e of parts.dnatIface) out.push(dnatIfaceElement(e, family));
}

/** The elements one endpoint puts in the table; they depend on that endpoint alone. */
export function endpointElements(ep: EndpointPlan, parts: EndpointParts = endpointParts(ep)): Element[] {
  const out: Element[] = [];
  familyElements(4, ep.address, ep.siblings4, ep.hostIf, parts.v4, out);
  if (ep.address6 !== undefined) familyElements(6, ep.address6, ep.siblings6, ep.hostIf, parts.v6, out);
  return out;
}

/** Every element of the table for `plan`, per set, in the order the full ruleset lists them. */
export function planElements(plan: RulesetPlan): Map<SetName, Element[]> {
  const out = new Map<SetName, Element[]>(SETS.map((s) => [s.name, []]));
  const push = (e: Element) => out.get(e.set)!.push(e);
  for (const e of networkElements(plan)) push(e);
  for (const [family, f] of [[4, plan], [6, plan.v6]] as [Family, FamilyPlan][]) {
    const set = (base: BaseSetName) => setName(base, family);
    for (const s of f.endpointSources) push({ set: set('endpoint_sources'), key: sourceText(s) });
    for (const k of f.exposedDirect) push({ set: set('exposed_direct'), key: serviceText(k) });
    for (const k of f.exposedDirectFrom) push({ set: set('exposed_direct_from'), key: sourcedServiceText(k) });
    for (const k of f.exposedDnat) push({ set: set('exposed_dnat'), key: serviceText(k) });
    for (const k of f.loopbackExposures) push({ set: set('loopback_exposures'), key: serviceText(k) });
    for (const a of f.hairpinSelf) push({ set: set('hairpin_self'), key: hairpinText(a) });
    for (const g of f.guards) push(guardElement(g, family));
    for (const a of f.allows) push(allowElement(a, family));
    for (const g of f.dnatAny) for (const e of g.items) push(dnatAnyElement(e, family));
    for (const g of f.dnatBound) for (const e of g.items) push(dnatBoundElement(e, family));
    for (const g of f.dnatIface) for (const e of g.items) push(dnatIfaceElement(e, family));
  }
  return out;
}
