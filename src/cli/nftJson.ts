import type { FirewallModel } from '../dataplane/model.js';
import { planRuleset, type ServiceKey } from '../dataplane/nft/plan.js';
import { renderRuleset } from '../dataplane/nft/render.js';

/**
 * `nft -j list table inet portnet` made readable, and what the table should hold according to the
 * plugin's firewall model, in the same text form so the two can be compared element by element.
 * Element text follows nft's own syntax without quotes: `pn3f2a1b2c3d4 . 198.18.1.2`,
 * `198.18.1.2 . tcp . 5000-5003`, `tcp . 8080 : 198.18.1.2 . 80`.
 */

export interface LiveSet {
  name: string;
  kind: 'set' | 'map';
  elements: string[];
}

export interface LiveRule {
  chain: string;
  text: string;
  /** Set and map names the rule reads (`@name`). */
  uses: string[];
}

export interface LiveTable {
  name: string;
  sets: Map<string, LiveSet>;
  chains: Map<string, { name: string; hook?: string; rules: LiveRule[] }>;
}

/** What each set or map of render.ts is for, for `portnet inspect`. */
export const SET_PURPOSE: Record<string, string> = {
  pools: 'every pool of every portnet network',
  masquerade_pools: 'pools masqueraded when leaving through a non-pn interface',
  endpoint_sources: 'the only source address each pn veth may send from (anti-spoofing)',
  icc_pairs: 'source pool . destination pool allowed on any port (icc on)',
  exposed_direct: 'open from anywhere on the container address (exposures on all host addresses)',
  exposed_dnat: 'open once portnet has DNATed to it',
  loopback_exposures: 'host address . proto . port for the host\'s own processes only (dropped from elsewhere)',
  hairpin_self: 'container reaching its own exposure through a host address: SNAT',
  dnat_any: 'exposures on all host addresses: proto . host port -> container address . port',
  dnat_bound: 'exposures bound to one host address: address . proto . host port -> container address . port',
};

type Json = unknown;

function isObject(x: Json): x is Record<string, Json> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** An nft JSON expression as nft would print it (the subset portnet's table uses; anything else as JSON). */
export function formatExpr(x: Json, quoteStrings = false): string {
  if (typeof x === 'string') return quoteStrings && !x.startsWith('@') ? JSON.stringify(x) : x;
  if (typeof x === 'number' || typeof x === 'boolean') return String(x);
  if (Array.isArray(x)) return x.map((e) => formatExpr(e, quoteStrings)).join(',');
  if (!isObject(x)) return JSON.stringify(x);
  if ('elem' in x && isObject(x.elem) && 'val' in x.elem) return formatExpr(x.elem.val, quoteStrings);
  if (isObject(x.prefix)) return `${formatExpr(x.prefix.addr)}/${formatExpr(x.prefix.len)}`;
  if (Array.isArray(x.range)) return `${formatExpr(x.range[0])}-${formatExpr(x.range[1])}`;
  if (Array.isArray(x.concat)) return x.concat.map((e) => formatExpr(e, quoteStrings)).join(' . ');
  if (Array.isArray(x.set)) return `{ ${x.set.map((e) => formatExpr(e, quoteStrings)).join(', ')} }`;
  if (isObject(x.payload)) return `${formatExpr(x.payload.protocol)} ${formatExpr(x.payload.field)}`;
  if (isObject(x.meta)) {
    const key = String(x.meta.key);
    return ['iifname', 'oifname', 'iif', 'oif', 'mark'].includes(key) ? key : `meta ${key}`;
  }
  if (isObject(x.ct)) return `ct ${formatExpr(x.ct.key)}`;
  if (isObject(x.fib)) {
    const flags = Array.isArray(x.fib.flags) ? x.fib.flags.map(String).join(' . ') : '';
    return `fib ${flags} ${formatExpr(x.fib.result)}`;
  }
  if (isObject(x.map)) return `${formatExpr(x.map.key)} map ${formatExpr(x.map.data)}`;
  return JSON.stringify(x);
}

function isIfname(left: Json): boolean {
  if (!isObject(left)) return false;
  if (isObject(left.meta)) return ['iifname', 'oifname'].includes(String(left.meta.key));
  return false;
}

/** One statement of a rule's `expr` list. */
export function formatStatement(s: Json): string {
  if (!isObject(s)) return JSON.stringify(s);
  const [kind] = Object.keys(s);
  const v = kind === undefined ? undefined : s[kind];
  switch (kind) {
    case 'match': {
      if (!isObject(v)) break;
      const left = formatExpr(v.left);
      const right = formatExpr(v.right, isIfname(v.left));
      const op = String(v.op);
      return op === '==' || op === 'in' ? `${left} ${right}` : `${left} ${op} ${right}`;
    }
    case 'counter':
      return isObject(v) ? `counter packets ${String(v.packets)} bytes ${String(v.bytes)}` : 'counter';
    case 'accept':
    case 'drop':
    case 'return':
    case 'continue':
    case 'masquerade':
      return v === null ? kind : `${kind} ${JSON.stringify(v)}`;
    case 'jump':
    case 'goto':
      return isObject(v) ? `${kind} ${String(v.target)}` : kind;
    case 'dnat':
    case 'snat':
      if (isObject(v)) return `${kind}${v.family ? ` ${String(v.family)}` : ''} to ${formatExpr(v.addr)}${v.port !== undefined ? `:${formatExpr(v.port)}` : ''}`;
      break;
    default:
      break;
  }
  return JSON.stringify(s);
}

function setRefs(x: Json, out: Set<string>): void {
  if (typeof x === 'string') {
    if (x.startsWith('@')) out.add(x.slice(1));
  } else if (Array.isArray(x)) {
    for (const e of x) setRefs(e, out);
  } else if (isObject(x)) {
    for (const v of Object.values(x)) setRefs(v, out);
  }
}

/** Parses `nft -j list table …` output. Throws when it is not nft's JSON. */
export function parseNftTable(text: string): LiveTable {
  const doc = JSON.parse(text) as { nftables?: Json[] };
  if (!Array.isArray(doc.nftables)) throw new Error('nft -j output has no "nftables" array');
  const table: LiveTable = { name: '', sets: new Map(), chains: new Map() };
  for (const item of doc.nftables) {
    if (!isObject(item)) continue;
    if (isObject(item.table)) table.name = String(item.table.name);
    for (const kind of ['set', 'map'] as const) {
      const s = item[kind];
      if (!isObject(s)) continue;
      const elems = Array.isArray(s.elem) ? s.elem : [];
      const elements = elems.map((e) =>
        kind === 'map' && Array.isArray(e) ? `${formatExpr(e[0])} : ${formatExpr(e[1])}` : formatExpr(e),
      );
      table.sets.set(String(s.name), { name: String(s.name), kind, elements: elements.map(normalizeElement) });
    }
    if (isObject(item.chain)) {
      const c = item.chain;
      table.chains.set(String(c.name), { name: String(c.name), ...(c.hook ? { hook: String(c.hook) } : {}), rules: [] });
    }
    if (isObject(item.rule)) {
      const r = item.rule;
      const chain = String(r.chain);
      const exprs = Array.isArray(r.expr) ? r.expr : [];
      const uses = new Set<string>();
      setRefs(exprs, uses);
      let entry = table.chains.get(chain);
      if (!entry) table.chains.set(chain, (entry = { name: chain, rules: [] }));
      entry.rules.push({ chain, text: exprs.map(formatStatement).join(' '), uses: [...uses] });
    }
  }
  return table;
}

/** nft prints a /32 interval element as a bare address; compare in that form. */
export function normalizeElement(text: string): string {
  return text.replace(/\b(\d{1,3}(?:\.\d{1,3}){3})\/32\b/g, '$1');
}

function svc(k: ServiceKey): string {
  const ports = k.ports.first === k.ports.last ? String(k.ports.first) : `${k.ports.first}-${k.ports.last}`;
  return `${k.address} . ${k.proto} . ${ports}`;
}

/** Every set and map element the table should hold for `model`, keyed by set name. */
export function expectedElements(model: FirewallModel): Map<string, string[]> {
  const plan = planRuleset(model);
  const sets: Array<[string, string[]]> = [
    ['pools', plan.pools],
    ['masquerade_pools', plan.masqueradePools],
    ['endpoint_sources', plan.endpointSources.map((s) => `${s.hostIf} . ${s.address}`)],
    ['icc_pairs', plan.iccPairs.map(([a, b]) => `${a} . ${b}`)],
    ['exposed_direct', plan.exposedDirect.map(svc)],
    ['exposed_dnat', plan.exposedDnat.map(svc)],
    ['loopback_exposures', plan.loopbackExposures.map(svc)],
    ['hairpin_self', plan.hairpinSelf.map((a) => `${a} . ${a}`)],
    ['dnat_any', plan.dnatAny.flatMap((g) => g.items.map((e) => `${e.proto} . ${e.hostPort} : ${e.address} . ${e.containerPort}`))],
    ['dnat_bound', plan.dnatBound.flatMap((g) => g.items.map((e) => `${e.hostIp} . ${e.proto} . ${e.hostPort} : ${e.address} . ${e.containerPort}`))],
  ];
  return new Map(sets.map(([name, elements]) => [name, elements.map(normalizeElement)]));
}

/** Chain name → number of rules, from the script render.ts makes for `model`. */
export function expectedChains(model: FirewallModel): Map<string, number> {
  const out = new Map<string, number>();
  let current: string | undefined;
  for (const raw of renderRuleset(model).split('\n')) {
    const line = raw.trim();
    const open = /^chain (\S+) \{$/.exec(line);
    if (open?.[1]) {
      current = open[1];
      out.set(current, 0);
    } else if (current !== undefined) {
      if (line === '}') current = undefined;
      else if (line !== '' && !line.startsWith('#') && !line.startsWith('type ')) out.set(current, (out.get(current) ?? 0) + 1);
    }
  }
  return out;
}

/** Tokens of an element (`a . b : c . d` → a, b, c, d), to tell 198.18.1.2 from 198.18.1.20. */
export function elementTokens(element: string): string[] {
  return element.split(/ [.:] /).map((t) => t.trim());
}
