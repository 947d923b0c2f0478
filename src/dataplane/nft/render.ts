import type { FirewallModel } from '../model.js';
import {
  SETS,
  dnatAnyElement,
  dnatBoundElement,
  dnatIfaceElement,
  elementText,
  planElements,
  setName,
  type Element,
  type SetName,
  type SetSpec,
} from './elements.js';
import { planRuleset, type DnatEntry, type EndpointGroup, type FamilyPlan, type RulesetPlan } from './plan.js';
import { FirewallModelError, shortId } from './syntax.js';

/** The nft table portnet owns (family inet). Nothing outside it is ever written by the nft side. */
export const DEFAULT_TABLE = 'portnet';

export interface RenderOptions {
  /** Table name, for running a second instance side by side (tests); defaults to `portnet`. */
  table?: string;
}

function tableName(options: RenderOptions): string {
  const table = options.table ?? DEFAULT_TABLE;
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(table)) throw new FirewallModelError(`bad table name ${JSON.stringify(table)}`);
  return table;
}

/**
 * A batch that deletes portnet's table if it exists and does nothing otherwise: `add` makes the
 * `delete` safe on a host where the table was never created (nft 1.0.6 has no `destroy`).
 */
export function renderRemoval(options: RenderOptions = {}): string {
  const table = tableName(options);
  return `add table inet ${table}\ndelete table inet ${table}\n`;
}

/**
 * The whole ruleset as one nft script that replaces portnet's table atomically. The text is also
 * what `portnet inspect` shows, so it explains itself.
 */
export function renderRuleset(model: FirewallModel, options: RenderOptions = {}): string {
  return renderPlan(planRuleset(model), options);
}

/** renderRuleset for a model that is already planned. */
export function renderPlan(plan: RulesetPlan, options: RenderOptions = {}): string {
  const table = tableName(options);
  const out: string[] = [];
  out.push(...header(plan, table));
  out.push('');
  out.push(...renderRemoval(options).trimEnd().split('\n'));
  out.push('');
  out.push(`table inet ${table} {`);
  out.push('\tcomment "managed by portnet from its state, do not edit"');
  out.push(...body(plan));
  out.push('}');
  return out.join('\n') + '\n';
}

function header(plan: RulesetPlan, table: string): string[] {
  const lines = [
    '#!/usr/sbin/nft -f',
    '#',
    '# portnet firewall: generated from portnet\'s state, do not edit.',
    '#',
    `# Applied with \`nft -f -\` as one transaction that replaces table inet ${table} as a whole`,
    '# ("add table" + "delete table" + the definition below), so it is never half-applied and no other',
    '# table is touched. Its rules only match traffic of portnet\'s pools and its pn* veths. Later changes',
    '# are one transaction each too, of `add element` / `delete element` (the chains never change).',
    '#',
    '# Who may open a connection to a container (replies to its own connections always pass):',
    '#   - the host\'s own processes: any port (output path, never filtered here);',
    '#   - a container on the same network: any port, unless the network has icc off;',
    '#   - anyone else: exposed ports only. An exposure on all host addresses is also open directly on',
    '#     the container address; one bound to a host IP only through that IP; one bound to an',
    '#     interface only through the addresses of that interface, for packets arriving on it; one',
    '#     bound to 127.0.0.1 or ::1 only for the host (from elsewhere dropped, moby#45610).',
    '# An exposure with an allowlist (@SOURCE) is open to those sources only, on both paths: other',
    '# clients are dropped before DNAT (prerouting_guard), so they never reach a host socket instead.',
    '# DNAT happens only for traffic addressed to this host (fib daddr type local). A pn* veth may only',
    '# send from its own container\'s addresses (IPv6: and link-local ones). Localhost clients and a',
    '# container reaching its own exposure are masqueraded; every other client keeps its source address.',
    '# IPv4 and IPv6 follow the same policy; the IPv6 sets are the IPv4 ones with a 6 appended.',
    '#',
    `# Networks: ${plan.networks.length}`,
  ];
  for (const n of plan.networks) {
    const pools = [...n.pools, ...n.pools6].map((p) => p.text).join(',') || '(no pools)';
    lines.push(
      `#   #${n.index} ${shortId(n.id)}  ${pools}  icc ${n.icc ? 'on' : 'off'}  masquerade ${n.masquerade ? 'on' : 'off'}`,
    );
  }
  lines.push(`# Endpoints: ${plan.endpoints.length}`);
  for (const ep of plan.endpoints) {
    const shown = ep.exposures.filter((x) => x.kind !== 'skipped').map((x) => x.text);
    const addresses = ep.address6 === undefined ? ep.address : `${ep.address} ${ep.address6}`;
    lines.push(
      `#   ${ep.hostIf}  ${addresses}  net #${ep.network.index}  ${shown.length ? shown.join(', ') : '(nothing exposed)'}`,
    );
    for (const x of ep.exposures.filter((e) => e.kind === 'skipped')) {
      lines.push(`#     not applied: ${x.text} (IPv6 host address; the endpoint has no IPv6 address)`);
    }
  }
  return lines;
}

function body(plan: RulesetPlan): string[] {
  const elements = planElements(plan);
  const groups = new Map<SetName, { groups: EndpointGroup<DnatEntry>[]; element: (e: DnatEntry) => Element }>();
  for (const f of [plan, plan.v6] as FamilyPlan[]) {
    groups.set(setName('dnat_any', f.family), { groups: f.dnatAny, element: (e) => dnatAnyElement(e, f.family) });
    groups.set(setName('dnat_bound', f.family), { groups: f.dnatBound, element: (e) => dnatBoundElement(e, f.family) });
    groups.set(setName('dnat_iface', f.family), { groups: f.dnatIface, element: (e) => dnatIfaceElement(e, f.family) });
  }
  const blocks: string[][] = SETS.map((spec) => {
    const grouped = groups.get(spec.name);
    if (!grouped) return container(spec, (elements.get(spec.name) ?? []).map((e) => ({ element: elementText(e) })));
    // Map elements grouped per endpoint, so the rendered map says whose they are.
    const lines: Line[] = [];
    for (const g of grouped.groups) {
      lines.push({ comment: `${g.hostIf} ${g.address}` });
      for (const item of g.items) lines.push({ element: elementText(grouped.element(item)) });
    }
    return container(spec, lines);
  });
  blocks.push(CHAINS);
  return blocks.flatMap((b) => ['', ...b]);
}

type Line = { element: string } | { comment: string };

function container(spec: SetSpec, lines: Line[]): string[] {
  const out = [`\t# ${spec.why}`, `\t${spec.kind} ${spec.name} {`, `\t\ttype ${spec.type}`];
  if (spec.interval) out.push('\t\tflags interval');
  const lastElement = lines.map((l) => 'element' in l).lastIndexOf(true);
  if (lastElement >= 0) {
    out.push('\t\telements = {');
    lines.forEach((l, i) => {
      if ('comment' in l) out.push(`\t\t\t# ${l.comment}`);
      else out.push(`\t\t\t${l.element}${i < lastElement ? ',' : ''}`);
    });
    out.push('\t\t}');
  }
  out.push('\t}');
  return out;
}

/** What one incremental change does to the table's elements. */
export interface ElementDelta {
  deletes: Element[];
  adds: Element[];
}

/**
 * A change of elements as one nft batch: every delete, then every add, grouped per set in the
 * order the ruleset declares them. nft runs a batch as one transaction, so the table goes from the
 * old contents to the new ones at once or not at all. Map elements are deleted by key.
 */
export function renderDelta(delta: ElementDelta, options: RenderOptions = {}): string {
  const table = tableName(options);
  const out = [`# portnet firewall change: ${delta.deletes.length} element(s) out, ${delta.adds.length} in (one transaction)`];
  const lines = (verb: 'delete' | 'add', elements: Element[], text: (e: Element) => string) => {
    const bySet = new Map<SetName, string[]>();
    for (const e of elements) {
      let list = bySet.get(e.set);
      if (!list) bySet.set(e.set, (list = []));
      list.push(text(e));
    }
    for (const spec of SETS) {
      const list = bySet.get(spec.name);
      if (list) out.push(`${verb} element inet ${table} ${spec.name} { ${list.join(', ')} }`);
    }
  };
  lines('delete', delta.deletes, (e) => e.key);
  lines('add', delta.adds, elementText);
  return out.join('\n') + '\n';
}

/** The chains never change with the model: one more endpoint or exposure is one more element. */
const CHAINS: string[] = `
	# Before conntrack, so a packet that lies about its origin never creates state.
	chain prerouting_raw {
		type filter hook prerouting priority raw; policy accept;
		# A pn veth carries exactly one container: only its address may be the source.
		iifname "pn*" iifname . ip saddr != @endpoint_sources counter drop
		# IPv6 also needs link-local sources and :: (neighbour discovery, duplicate address detection).
		iifname "pn*" ip6 saddr != { ::, fe80::/10 } iifname . ip6 saddr != @endpoint_sources6 counter drop
		# pn veths have route_localnet=1 and a local ::1 route (needed for the replies of localhost
		# DNAT); containers must still not reach the host's loopback services through them.
		iifname "pn*" ip daddr 127.0.0.0/8 counter drop
		iifname "pn*" ip6 daddr ::1 counter drop
		# moby#45610: a loopback-bound exposure is for the host alone, whatever arrives elsewhere.
		iifname != "lo" ip daddr . meta l4proto . th dport @loopback_exposures counter drop
		iifname != "lo" ip6 daddr . meta l4proto . th dport @loopback_exposures6 counter drop
	}

	# Allowlists, before DNAT: a refused client is dropped here, not left to reach whatever the host
	# itself runs on that port. Same "addressed to this host" tests as the DNAT below.
	chain prerouting_guard {
		type filter hook prerouting priority dstnat - 10; policy accept;
		# The host's own packets to its own addresses loop through lo: never filtered.
		iifname "lo" return
		# A reply to the host's own connection may come back to a port number that is guarded.
		ct direction reply return
		meta nfproto ipv4 fib daddr type local meta l4proto . th dport @guard_any meta l4proto . th dport . ip saddr != @allow_any counter drop
		meta nfproto ipv6 fib daddr type local meta l4proto . th dport @guard_any6 meta l4proto . th dport . ip6 saddr != @allow_any6 counter drop
		meta nfproto ipv4 fib daddr type local ip daddr . meta l4proto . th dport @guard_bound ip daddr . meta l4proto . th dport . ip saddr != @allow_bound counter drop
		meta nfproto ipv6 fib daddr type local ip6 daddr . meta l4proto . th dport @guard_bound6 ip6 daddr . meta l4proto . th dport . ip6 saddr != @allow_bound6 counter drop
		meta nfproto ipv4 fib daddr . iif type local iifname . meta l4proto . th dport @guard_iface iifname . meta l4proto . th dport . ip saddr != @allow_iface counter drop
		meta nfproto ipv6 fib daddr . iif type local iifname . meta l4proto . th dport @guard_iface6 iifname . meta l4proto . th dport . ip6 saddr != @allow_iface6 counter drop
	}

	# Exposures, for traffic addressed to this host only (CVE-2025-67499 shows why).
	chain prerouting_nat {
		type nat hook prerouting priority dstnat; policy accept;
		# Loopback destinations are never translated for packets from outside (moby#45610).
		ip daddr 127.0.0.0/8 return
		ip6 daddr ::1 return
		fib daddr type local jump exposures
		# Interface bindings: arrived on the interface, for one of its own addresses (whichever it
		# has now). Not in output_nat: the host's own packets arrive on no interface.
		meta nfproto ipv4 fib daddr . iif type local dnat ip to iifname . meta l4proto . th dport map @dnat_iface
		meta nfproto ipv6 fib daddr . iif type local dnat ip6 to iifname . meta l4proto . th dport map @dnat_iface6
	}

	# The host's own connections to an exposure, 127.0.0.1 and ::1 included (no userland proxy).
	chain output_nat {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump exposures
	}

	chain exposures {
		meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @dnat_bound
		meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat_bound6
		meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat_any
		meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @dnat_any6
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname "pn*" jump to_endpoint
		ip daddr @pools jump to_endpoint
		ip6 daddr @pools6 jump to_endpoint
	}

	# New connections to a container; the host's own processes never come through here.
	chain to_endpoint {
		ct state established,related accept
		ct state invalid counter drop
		ip daddr . meta l4proto . th dport @exposed_direct accept
		ip6 daddr . meta l4proto . th dport @exposed_direct6 accept
		ip daddr . meta l4proto . th dport . ip saddr @exposed_direct_from accept
		ip6 daddr . meta l4proto . th dport . ip6 saddr @exposed_direct_from6 accept
		# portnet's DNAT only exists for exposures, and refused sources died in prerouting_guard, so
		# a DNATed connection to an exposed port is one that may pass.
		ct status dnat ip daddr . meta l4proto . th dport @exposed_dnat accept
		ct status dnat ip6 daddr . meta l4proto . th dport @exposed_dnat6 accept
		# Same network: sources on pn veths were checked in prerouting_raw.
		iifname "pn*" ip saddr . ip daddr @icc_pairs accept
		iifname "pn*" ip6 saddr . ip6 daddr @icc_pairs6 accept
		counter drop
	}

	chain postrouting_nat {
		type nat hook postrouting priority srcnat; policy accept;
		# A container cannot answer 127.0.0.1 or ::1; the kernel picks a host address for the veth.
		oifname "pn*" ip saddr 127.0.0.0/8 masquerade
		oifname "pn*" ip6 saddr ::1 masquerade
		# A container would drop a packet from its own address; other hairpin clients keep theirs.
		oifname "pn*" ct status dnat ip saddr . ip daddr @hairpin_self masquerade
		oifname "pn*" ct status dnat ip6 saddr . ip6 daddr @hairpin_self6 masquerade
		oifname != "pn*" ip saddr @masquerade_pools masquerade
		oifname != "pn*" ip6 saddr @masquerade_pools6 masquerade
	}`
  .slice(1)
  .split('\n');
