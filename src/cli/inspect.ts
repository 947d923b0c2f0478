import type { FirewallModel } from '../dataplane/model.js';
import type { StateView } from '../server/introspect.js';
import { ConfigError } from '../config.js';
import { parseClientFlags } from './args.js';
import { fetchFirewall, fetchState, type FirewallView } from './client.js';
import { readKernel, type KernelFacts, type KernelRoute } from './kernel.js';
import { lsRows, sourcesText, type LsRow } from './ls.js';
import { elementTokens, expectedElements, normalizeElement, SET_PURPOSE } from './nftJson.js';
import { printable } from './table.js';

type EndpointView = StateView['endpoints'][number];
type NetworkView = StateView['networks'][number];

export type Target = { kind: 'endpoint'; endpoint: EndpointView } | { kind: 'network'; network: NetworkView };

export class NotFound extends Error {
  override name = 'NotFound';
}

function describe(view: StateView, t: Target): string {
  if (t.kind === 'network') return `network ${t.network.name ?? '?'} (${t.network.id.slice(0, 12)})`;
  const net = view.networks.find((n) => n.id === t.endpoint.networkId);
  return `endpoint ${t.endpoint.id.slice(0, 12)} (container ${t.endpoint.container?.name ?? '?'}, ${t.endpoint.address} on ${net?.name ?? t.endpoint.networkId.slice(0, 12)})`;
}

/**
 * Finds what `query` names: an exact endpoint ID, container name or ID, link name or address, or
 * network ID or name wins; otherwise a unique prefix of any of those but the address. Several matches
 * are an error that lists them.
 */
export function resolveTarget(view: StateView, query: string): Target {
  if (query === '') throw new ConfigError('inspect needs an endpoint or network: an ID, a name, or a prefix of one');
  const targets: Array<{ target: Target; keys: string[]; exactOnly: string[] }> = [
    ...view.endpoints.map((e) => ({
      target: { kind: 'endpoint' as const, endpoint: e },
      keys: [e.id, e.hostIf, ...(e.container ? [e.container.name, ...(e.container.id ? [e.container.id] : [])] : [])],
      exactOnly: [e.address],
    })),
    ...view.networks.map((n) => ({ target: { kind: 'network' as const, network: n }, keys: [n.id, ...(n.name ? [n.name] : [])], exactOnly: [] })),
  ];
  const lower = query.toLowerCase();
  const exact = targets.filter((t) => [...t.keys, ...t.exactOnly].some((k) => k === query || k.toLowerCase() === lower));
  const found = exact.length > 0 ? exact : targets.filter((t) => t.keys.some((k) => k.toLowerCase().startsWith(lower)));
  if (found.length === 1) return found[0]!.target;
  if (found.length === 0) throw new NotFound(`no endpoint or network of portnet matches "${printable(query)}"`);
  throw new NotFound(`"${printable(query)}" matches ${found.length} things; say more:\n${found.map((f) => `  ${describe(view, f.target)}`).join('\n')}`);
}

export interface NftSetView {
  name: string;
  kind: 'set' | 'map';
  purpose: string;
  elements: Array<{ element: string; live: boolean; expected: boolean }>;
  rules: Array<{ chain: string; text: string }>;
}

export interface NftView {
  table: string;
  error?: string;
  sets: NftSetView[];
}

const NETWORK_SETS = new Set(['pools', 'masquerade_pools', 'icc_pairs'].flatMap((n) => [n, `${n}6`]));

/**
 * The live elements (and the rules that read them) that implement one endpoint or network, beside
 * what portnet's state says should be there: an element the state wants and the kernel lacks is
 * listed with live=false.
 */
export function nftFor(target: Target, firewall: FirewallView, kernel: Pick<KernelFacts, 'table' | 'tableError'>): NftView {
  const full = expectedElements(firewall.model);
  let own: Map<string, string[]>;
  let tokens: Set<string>;
  if (target.kind === 'endpoint') {
    const e = target.endpoint;
    const model: FirewallModel = {
      networks: firewall.model.networks.filter((n) => n.id === e.networkId),
      endpoints: firewall.model.endpoints.filter((x) => x.id === e.id),
    };
    own = new Map([...expectedElements(model)].filter(([name]) => !NETWORK_SETS.has(name)));
    tokens = new Set([e.address, ...(e.address6 !== undefined ? [normalizeElement(e.address6)] : []), e.hostIf]);
  } else {
    const model: FirewallModel = { networks: firewall.model.networks.filter((n) => n.id === target.network.id), endpoints: [] };
    own = new Map([...expectedElements(model)].filter(([name]) => NETWORK_SETS.has(name)));
    tokens = new Set([...target.network.pools, ...target.network.pools6].map(normalizeElement));
  }
  const view: NftView = { table: firewall.table, sets: [] };
  if (!kernel.table) {
    view.error = kernel.tableError === 'absent' ? `table inet ${firewall.table} is missing` : (kernel.tableError ?? 'not read');
  }
  for (const [name, mine] of own) {
    const live = kernel.table?.sets.get(name);
    const liveElements = live?.elements ?? [];
    const wanted = new Set(mine.filter((m) => full.get(name)?.includes(m)));
    const shown = new Map<string, { element: string; live: boolean; expected: boolean }>();
    for (const el of liveElements) {
      if (wanted.has(el) || elementTokens(el).some((t) => tokens.has(t))) {
        shown.set(el, { element: el, live: true, expected: full.get(name)?.includes(el) ?? false });
      }
    }
    if (kernel.table) for (const w of wanted) if (!shown.has(w)) shown.set(w, { element: w, live: false, expected: true });
    if (shown.size === 0) continue;
    const rules = kernel.table ? [...kernel.table.chains.values()].flatMap((c) => c.rules.filter((r) => r.uses.includes(name)).map((r) => ({ chain: c.name, text: r.text }))) : [];
    view.sets.push({ name, kind: live?.kind ?? (name.startsWith('dnat_') ? 'map' : 'set'), purpose: SET_PURPOSE[name] ?? '', elements: [...shown.values()], rules });
  }
  return view;
}

export interface EndpointInspect {
  kind: 'endpoint';
  endpoint: EndpointView;
  network: NetworkView | null;
  row: LsRow;
  kernel: { link: { name: string; up: boolean; proxyArp?: string; forwarding?: string } | null; routes: KernelRoute[] };
  nft: NftView;
}

export interface NetworkInspect {
  kind: 'network';
  network: NetworkView;
  pools: StateView['pools'];
  endpoints: LsRow[];
  kernel: { routes: KernelRoute[] };
  nft: NftView;
}

export function inspectTarget(view: StateView, target: Target, firewall: FirewallView, kernel: KernelFacts): EndpointInspect | NetworkInspect {
  const nft = nftFor(target, firewall, kernel);
  if (target.kind === 'endpoint') {
    const e = target.endpoint;
    const link = kernel.links.find((l) => l.name === e.hostIf);
    return {
      kind: 'endpoint',
      endpoint: e,
      network: view.networks.find((n) => n.id === e.networkId) ?? null,
      row: lsRows(view).find((r) => r.endpoint === e.id)!,
      kernel: {
        link: link ? { name: link.name, up: link.up, ...kernel.sysctls[link.name] } : null,
        routes: kernel.routes.filter((r) => r.dev === e.hostIf || [e.address, `${e.address}/32`].includes(r.dst) || (e.address6 !== undefined && [e.address6, `${e.address6}/128`].includes(r.dst))),
      },
      nft,
    };
  }
  const n = target.network;
  return {
    kind: 'network',
    network: n,
    pools: view.pools.filter((p) => n.pools.includes(p.pool)),
    endpoints: lsRows(view).filter((r) => r.networkId === n.id),
    kernel: { routes: kernel.routes.filter((r) => n.pools.includes(r.dst)) },
    nft,
  };
}

function field(label: string, value: string | string[]): string[] {
  const values = typeof value === 'string' ? [value] : value.length === 0 ? ['-'] : value;
  return values.map((v, i) => `${(i === 0 ? label : '').padEnd(11)}${printable(v)}`);
}

function options(o: Record<string, string>): string[] {
  return Object.entries(o).map(([k, v]) => `${k}=${v}`);
}

function renderNft(nft: NftView): string[] {
  const out = ['', `nft table inet ${nft.table} (live)`];
  if (nft.error) out.push(`  cannot show it: ${nft.error}`);
  for (const s of nft.sets) {
    out.push(`  ${s.kind} ${s.name}: ${s.purpose}`);
    for (const e of s.elements) {
      if (!e.live) out.push(`    MISSING ${e.element}    (portnet's state has it; the kernel does not)`);
      else if (!e.expected) out.push(`    ${e.element}    (in the kernel only: not in portnet's state)`);
      else out.push(`    ${e.element}`);
    }
    for (const r of s.rules) out.push(`    used by ${r.chain}: ${r.text}`);
  }
  if (!nft.error && nft.sets.length === 0) out.push('  (no elements)');
  return out;
}

function routeText(r: KernelRoute): string {
  return `${r.type === 'unicast' ? '' : `${r.type} `}${r.dst}${r.dev ? ` dev ${r.dev}` : ''}${r.metric !== undefined ? ` metric ${r.metric}` : ''}`;
}

export function renderInspect(x: EndpointInspect | NetworkInspect): string {
  const out: string[] = [];
  if (x.kind === 'endpoint') {
    const e = x.endpoint;
    out.push(...field('endpoint', e.id));
    out.push(...field('container', e.container ? `${e.container.name}${e.container.id ? ` (${e.container.id.slice(0, 12)})` : ''}` : '? (not learnt from Docker yet)'));
    out.push(...field('network', `${x.network?.name ?? '?'} (${e.networkId.slice(0, 12)})`));
    out.push(...field('address', [`${e.address}/${e.prefix}${e.mac ? `   mac ${e.mac}` : ''}`, ...(e.address6 ? [`${e.address6}/${e.prefix6 ?? 128}`] : [])]));
    out.push(...field('link', `${e.hostIf} (container side ${e.peerIf} until Docker names it eth0)`));
    out.push(...field('joined', e.joined ? `yes${e.sandboxKey ? `, sandbox ${e.sandboxKey}` : ''}` : 'no'));
    out.push(...field('options', options(e.options)));
    out.push(
      ...field(
        'exposed',
        x.row.exposures.map((r) => `${r.text}   from ${sourcesText(r)}   (${r.origin === 'option' ? 'com.example.expose' : '-p'})`),
      ),
    );
    out.push('', 'kernel');
    const l = x.kernel.link;
    out.push(l ? `  link ${l.name}: ${l.up ? 'up' : 'DOWN'}, proxy_arp ${l.proxyArp ?? '?'}, forwarding ${l.forwarding ?? '?'}` : `  link ${e.hostIf}: ${e.joined ? 'MISSING' : 'absent (not joined)'}`);
    if (x.kernel.routes.length === 0) out.push(`  route ${e.address}/32: ${e.joined ? 'MISSING' : 'absent (not joined)'}`);
    for (const r of x.kernel.routes) out.push(`  route ${routeText(r)}`);
  } else {
    const n = x.network;
    out.push(...field('network', n.id));
    out.push(...field('name', n.name ?? '? (not learnt from Docker yet)'));
    out.push(...field('pools', x.pools.map((p) => `${p.pool}${p.subPool ? ` (range ${p.subPool})` : ''}: ${p.allocated.length} of ${p.capacity} addresses held${p.carved ? ', carved from the default pool' : ''}`)));
    if (n.pools6?.length) out.push(...field('pools6', n.pools6));
    out.push(...field('policy', `icc ${n.icc ? 'on' : 'off'}, masquerade ${n.masquerade ? 'on' : 'off'}${n.internal ? ', internal' : ''}`));
    if (n.exposeFrom) out.push(...field('allowlist', `${n.exposeFrom.join(' ')} (com.example.expose.from: exposures that name no sources)`));
    out.push(...field('options', options(n.options)));
    out.push(...field('endpoints', x.endpoints.map((r) => `${r.endpoint.slice(0, 12)}  ${r.address}  ${r.container ?? '?'}${r.exposures.length ? `  ${r.exposures.map((e) => e.text).join(', ')}` : ''}`)));
    out.push('', 'kernel');
    for (const p of n.pools) {
      const r = x.kernel.routes.find((k) => k.dst === p && k.type === 'unreachable');
      out.push(`  route ${r ? routeText(r) : `unreachable ${p}: MISSING`}`);
    }
  }
  out.push(...renderNft(x.nft));
  return out.join('\n') + '\n';
}

export async function inspectCommand(args: string[]): Promise<number> {
  const flags = parseClientFlags(args, process.env, 1);
  const query = flags.positionals[0];
  if (query === undefined) throw new ConfigError('usage: portnet inspect [--json] [--socket PATH] ENDPOINT|CONTAINER|NETWORK');
  const [view, firewall] = await Promise.all([fetchState(flags.socket), fetchFirewall(flags.socket)]);
  const target = resolveTarget(view, query);
  const kernel = await readKernel();
  const result = inspectTarget(view, target, firewall, kernel);
  process.stdout.write(flags.json ? JSON.stringify(result, null, 2) + '\n' : renderInspect(result));
  return 0;
}

