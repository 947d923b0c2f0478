import type { FirewallModel } from '../dataplane/model.js';
import { SETS, elementText, planElements } from '../dataplane/nft/elements.js';
import { planRuleset } from '../dataplane/nft/plan.js';
import { renderRuleset } from '../dataplane/nft/render.js';
import { bitsOf, formatIp, parseIp } from '../ipam/address.js';
import type { Ip } from '../ipam/types.js';

/**
 * `nft -j list table inet portnet` made readable, and what the table should hold according to the
 * plugin's firewall model, in the same text form so the two can be compared element by element.
 * Element text follows nft's own listing without quotes: `pn3f2a1b2c3d4 . 198.18.1.2`,
 * `198.18.1.2 . tcp . 80`, `tcp . 8080 : 198.18.1.2 . 80`, `eth0 . tcp . 8080 . 10.0.0.0/8`.
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

/** The `# …` line render.ts writes above a set, as it reads after `set NAME: ` in `portnet inspect`. */
function purpose(why: string): string {
  const text = why.endsWith('.') ? why.slice(0, -1) : why;
  // Lower-case a sentence's first word, but not an acronym such as the "IPv6:" of the v6 twins.
  return /^[A-Z][a-z]/.test(text) ? `${text.charAt(0).toLowerCase()}${text.slice(1)}` : text;
}

/** What each set or map of the table is for, for `portnet inspect`. */
export const SET_PURPOSE: Record<string, string> = Object.fromEntries(SETS.map((s) => [s.name, purpose(s.why)]));

type Json = unknown;

function isObject(x: Json): x is Record<string, Json> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

const UNQUALIFIED_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iifgroup', 'oifgroup']);

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
  if (isObject(x.payload)) {
    const p = x.payload;
    if (p.protocol === undefined) return `@${formatExpr(p.base)},${formatExpr(p.offset)},${formatExpr(p.len)}`;
    return `${formatExpr(p.protocol)} ${formatExpr(p.field)}`;
  }
  if (isObject(x.meta)) {
    const key = String(x.meta.key);
    // nft's meta_key_is_unqualified: these print without `meta`, every other key (nfproto, mark…) with it.
    return UNQUALIFIED_META.has(key) ? key : `meta ${key}`;
  }
  if (isObject(x.ct)) {
    // `ct original ip saddr`: direction and family only appear for keys that need them.
    const parts = [x.ct.dir, x.ct.family, x.ct.key].filter((p) => p !== undefined).map((p) => formatExpr(p));
    return `ct ${parts.join(' ')}`;
  }
  if (isObject(x.fib)) {
    // One flag may come as a plain string, several as a list: `fib daddr . iif type`.
    const flags = Array.isArray(x.fib.flags) ? x.fib.flags.map(String) : x.fib.flags === undefined ? [] : [String(x.fib.flags)];
    return `fib ${flags.join(' . ')} ${formatExpr(x.fib.result)}`;
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

/**
 * Element text in one spelling for both sides of a comparison: nft's listing (nft 1.0.6, checked on
 * the kernel) and render.ts's script say the same element differently. Per field:
 * - a quoted interface name (`"eth0"`, as the script writes it) loses its quotes, as nft lists it;
 * - an address or prefix in RFC 5952 / dotted-quad form, host bits cleared; a /32 or /128 is the bare
 *   address (nft lists a one-address interval so, in plain and concatenated interval sets alike);
 * - an address range that is exactly one prefix becomes that prefix (nft lists an added
 *   `10.0.0.0-10.255.255.255` as `10.0.0.0/8` and `0.0.0.0-255.255.255.255` as `0.0.0.0/0`); any
 *   other range stays `first-last`.
 * Everything else (protocols, ports, port ranges) is kept. Idempotent, so normalised text may pass again.
 */
export function normalizeElement(text: string): string {
  // Fields are joined by ` . ` and key from value by ` : `; IPv6's colons never have spaces around them.
  return text
    .split(/( [.:] )/)
    .map((part, i) => (i % 2 === 1 ? part : normalizeField(part.trim())))
    .join('');
}

function tryIp(text: string): Ip | undefined {
  try {
    return parseIp(text, 'address');
  } catch {
    return undefined;
  }
}

function prefixText(ip: Ip, len: number): string {
  const bits = bitsOf(ip.family);
  const hostMask = (1n << BigInt(bits - len)) - 1n;
  const network = formatIp({ family: ip.family, value: ip.value & ~hostMask });
  return len === bits ? network : `${network}/${len}`;
}

function normalizeField(field: string): string {
  if (field.length >= 2 && field.startsWith('"') && field.endsWith('"')) return field.slice(1, -1);
  const slash = field.indexOf('/');
  if (slash >= 0) {
    const ip = tryIp(field.slice(0, slash));
    const lenText = field.slice(slash + 1);
    if (!ip || !/^\d{1,3}$/.test(lenText) || Number(lenText) > bitsOf(ip.family)) return field;
    return prefixText(ip, Number(lenText));
  }
  const dash = field.indexOf('-');
  if (dash >= 0) {
    const first = tryIp(field.slice(0, dash));
    const last = tryIp(field.slice(dash + 1));
    // Port ranges (`5000-5003`) are no addresses and stay as they are.
    if (!first || !last || first.family !== last.family || last.value < first.value) return field;
    const size = last.value - first.value + 1n;
    if ((size & (size - 1n)) === 0n && (first.value & (size - 1n)) === 0n) {
      return prefixText(first, bitsOf(first.family) - (size.toString(2).length - 1));
    }
    return `${formatIp(first)}-${formatIp(last)}`;
  }
  const ip = tryIp(field);
  return ip ? formatIp(ip) : field;
}

/**
 * Every set and map element the table should hold for `model`, keyed by set name (every set of the
 * table, empty ones included). Taken from the very functions render.ts writes the elements with, so
 * it cannot drift from the ruleset; normalizeElement drops the quotes nft's listing does not have.
 */
export function expectedElements(model: FirewallModel): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, elements] of planElements(planRuleset(model))) {
    out.set(name, elements.map((e) => normalizeElement(elementText(e))));
  }
  return out;
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
