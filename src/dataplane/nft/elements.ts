import type { DnatEntry, EndpointParts, EndpointPlan, RulesetPlan, ServiceKey } from './plan.js';
import { endpointParts } from './plan.js';

/**
 * The sets and maps of portnet's table and the text of their elements. Both the full ruleset
 * (render.ts) and the deltas of an incremental apply (incremental.ts) take their element text from
 * here, so a delta always names elements exactly as the full ruleset wrote them.
 */

export type SetName =
  | 'pools'
  | 'masquerade_pools'
  | 'endpoint_sources'
  | 'icc_pairs'
  | 'exposed_direct'
  | 'exposed_dnat'
  | 'loopback_exposures'
  | 'hairpin_self'
  | 'dnat_any'
  | 'dnat_bound';

export interface SetSpec {
  name: SetName;
  kind: 'set' | 'map';
  why: string;
  type: string;
  interval: boolean;
}

/** Every set and map, in the order the ruleset declares them. */
export const SETS: readonly SetSpec[] = [
  { name: 'pools', kind: 'set', why: 'Every pool of every portnet network.', type: 'ipv4_addr', interval: true },
  {
    name: 'masquerade_pools',
    kind: 'set',
    why: 'Pools whose traffic is masqueraded when it leaves through a non-pn interface.',
    type: 'ipv4_addr',
    interval: true,
  },
  {
    name: 'endpoint_sources',
    kind: 'set',
    why: 'The only source address each pn veth may send from (anti-spoofing).',
    type: 'ifname . ipv4_addr',
    interval: false,
  },
  {
    name: 'icc_pairs',
    kind: 'set',
    why: 'Source pool . destination pool that may talk on any port (networks with icc on).',
    type: 'ipv4_addr . ipv4_addr',
    interval: true,
  },
  {
    name: 'exposed_direct',
    kind: 'set',
    why: 'Container address . protocol . port of exposures on all host addresses: open from anywhere.',
    type: 'ipv4_addr . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'exposed_dnat',
    kind: 'set',
    why: 'Container address . protocol . port that may be reached once portnet has DNATed to it.',
    type: 'ipv4_addr . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'loopback_exposures',
    kind: 'set',
    why: "Loopback-bound exposures (host address . protocol . port): for the host's own processes only.",
    type: 'ipv4_addr . inet_proto . inet_service',
    interval: false,
  },
  {
    name: 'hairpin_self',
    kind: 'set',
    why: 'Container . itself: reaching its own exposure through a host address needs SNAT.',
    type: 'ipv4_addr . ipv4_addr',
    interval: false,
  },
  {
    name: 'dnat_any',
    kind: 'map',
    why: 'Exposures on all host addresses: protocol . host port -> container address . port.',
    type: 'inet_proto . inet_service : ipv4_addr . inet_service',
    interval: false,
  },
  {
    name: 'dnat_bound',
    kind: 'map',
    why: 'Exposures bound to one host address: address . protocol . host port -> container address . port.',
    type: 'ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service',
    interval: false,
  },
];

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

export function sourceText(s: { hostIf: string; address: string }): string {
  return `"${s.hostIf}" . ${s.address}`;
}

export function hairpinText(address: string): string {
  return `${address} . ${address}`;
}

export function dnatAnyElement(e: DnatEntry): Element {
  return { set: 'dnat_any', key: `${e.proto} . ${e.hostPort}`, value: `${e.address} . ${e.containerPort}` };
}

export function dnatBoundElement(e: DnatEntry): Element {
  return { set: 'dnat_bound', key: `${e.hostIp} . ${e.proto} . ${e.hostPort}`, value: `${e.address} . ${e.containerPort}` };
}

/** The elements that come from the networks (pools, masquerading, icc). */
export function networkElements(plan: Pick<RulesetPlan, 'pools' | 'masqueradePools' | 'iccPairs'>): Element[] {
  return [
    ...plan.pools.map((key): Element => ({ set: 'pools', key })),
    ...plan.masqueradePools.map((key): Element => ({ set: 'masquerade_pools', key })),
    ...plan.iccPairs.map(([a, b]): Element => ({ set: 'icc_pairs', key: `${a} . ${b}` })),
  ];
}

/** The elements one endpoint puts in the table; they depend on that endpoint alone. */
export function endpointElements(ep: EndpointPlan, parts: EndpointParts = endpointParts(ep)): Element[] {
  const out: Element[] = [{ set: 'endpoint_sources', key: sourceText(ep) }];
  for (const k of parts.exposedDirect) out.push({ set: 'exposed_direct', key: serviceText(k) });
  for (const k of parts.exposedDnat) out.push({ set: 'exposed_dnat', key: serviceText(k) });
  for (const k of parts.loopbackExposures) out.push({ set: 'loopback_exposures', key: serviceText(k) });
  if (parts.hairpinSelf) out.push({ set: 'hairpin_self', key: hairpinText(ep.address) });
  for (const e of parts.dnatAny) out.push(dnatAnyElement(e));
  for (const e of parts.dnatBound) out.push(dnatBoundElement(e));
  return out;
}

/** Every element of the table for `plan`, per set, in the order the full ruleset lists them. */
export function planElements(plan: RulesetPlan): Map<SetName, Element[]> {
  const out = new Map<SetName, Element[]>(SETS.map((s) => [s.name, []]));
  const push = (e: Element) => out.get(e.set)!.push(e);
  for (const e of networkElements(plan)) push(e);
  for (const s of plan.endpointSources) push({ set: 'endpoint_sources', key: sourceText(s) });
  for (const k of plan.exposedDirect) push({ set: 'exposed_direct', key: serviceText(k) });
  for (const k of plan.exposedDnat) push({ set: 'exposed_dnat', key: serviceText(k) });
  for (const k of plan.loopbackExposures) push({ set: 'loopback_exposures', key: serviceText(k) });
  for (const a of plan.hairpinSelf) push({ set: 'hairpin_self', key: hairpinText(a) });
  for (const g of plan.dnatAny) for (const e of g.items) push(dnatAnyElement(e));
  for (const g of plan.dnatBound) for (const e of g.items) push(dnatBoundElement(e));
  return out;
}
