import type { FirewallModel } from '../model.js';
import { planRuleset, type DnatEntry, type EndpointGroup, type RulesetPlan, type ServiceKey } from './plan.js';
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
  const table = tableName(options);
  const plan = planRuleset(model);
  const out: string[] = [];
  out.push(...header(plan, table));
  out.push('');
  out.push(...renderRemoval(options).trimEnd().split('\n'));
  out.push('');
  out.push(`table inet ${table} {`);
  out.push('\tcomment "managed by portnet: replaced as a whole on every change, do not edit"');
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
    '# table is touched. Its rules only match traffic of portnet\'s pools and its pn* veths.',
    '#',
    '# Who may open a connection to a container (replies to its own connections always pass):',
    '#   - the host\'s own processes: any port (output path, never filtered here);',
    '#   - a container on the same network: any port, unless the network has icc off;',
    '#   - anyone else: exposed ports only. An exposure on all host addresses is also open directly on',
    '#     the container address; one bound to a host IP only through that IP; one bound to 127.0.0.1',
    '#     only for the host (packets for it from any other interface are dropped, moby#45610).',
    '# DNAT happens only for traffic addressed to this host (fib daddr type local). A pn* veth may only',
    '# send from its own container\'s address. Localhost clients and a container reaching its own',
    '# exposure are masqueraded; every other client keeps its source address.',
    '#',
    `# Networks: ${plan.networks.length}`,
  ];
  for (const n of plan.networks) {
    const pools = n.pools.map((p) => p.text).join(',') || '(no pools)';
    lines.push(
      `#   #${n.index} ${shortId(n.id)}  ${pools}  icc ${n.icc ? 'on' : 'off'}  masquerade ${n.masquerade ? 'on' : 'off'}`,
    );
  }
  lines.push(`# Endpoints: ${plan.endpoints.length}`);
  for (const ep of plan.endpoints) {
    const shown = ep.exposures.filter((x) => x.kind !== 'skipped').map((x) => x.text);
    lines.push(
      `#   ${ep.hostIf}  ${ep.address}  net #${ep.network.index}  ${shown.length ? shown.join(', ') : '(nothing exposed)'}`,
    );
    for (const x of ep.exposures.filter((e) => e.kind === 'skipped')) {
      lines.push(`#     not applied: ${x.text} (IPv6 host address; portnet endpoints are IPv4-only)`);
    }
  }
  return lines;
}

function body(plan: RulesetPlan): string[] {
  const svc = (k: ServiceKey) =>
    `${k.address} . ${k.proto} . ${k.ports.first === k.ports.last ? k.ports.first : `${k.ports.first}-${k.ports.last}`}`;
  const blocks: string[][] = [
    set('pools', 'Every pool of every portnet network.', 'ipv4_addr', true, plan.pools),
    set(
      'masquerade_pools',
      'Pools whose traffic is masqueraded when it leaves through a non-pn interface.',
      'ipv4_addr',
      true,
      plan.masqueradePools,
    ),
    set(
      'endpoint_sources',
      'The only source address each pn veth may send from (anti-spoofing).',
      'ifname . ipv4_addr',
      false,
      plan.endpointSources.map((s) => `"${s.hostIf}" . ${s.address}`),
    ),
    set(
      'icc_pairs',
      'Source pool . destination pool that may talk on any port (networks with icc on).',
      'ipv4_addr . ipv4_addr',
      true,
      plan.iccPairs.map(([a, b]) => `${a} . ${b}`),
    ),
    set(
      'exposed_direct',
      'Container address . protocol . port of exposures on all host addresses: open from anywhere.',
      'ipv4_addr . inet_proto . inet_service',
      true,
      plan.exposedDirect.map(svc),
    ),
    set(
      'exposed_dnat',
      'Container address . protocol . port that may be reached once portnet has DNATed to it.',
      'ipv4_addr . inet_proto . inet_service',
      true,
      plan.exposedDnat.map(svc),
    ),
    set(
      'loopback_exposures',
      'Loopback-bound exposures (host address . protocol . port): for the host\'s own processes only.',
      'ipv4_addr . inet_proto . inet_service',
      true,
      plan.loopbackExposures.map(svc),
    ),
    set(
      'hairpin_self',
      'Container . itself: reaching its own exposure through a host address needs SNAT.',
      'ipv4_addr . ipv4_addr',
      false,
      plan.hairpinSelf.map((a) => `${a} . ${a}`),
    ),
    map(
      'dnat_any',
      'Exposures on all host addresses: protocol . host port -> container address . port.',
      'inet_proto . inet_service : ipv4_addr . inet_service',
      plan.dnatAny,
      (e) => `${e.proto} . ${e.hostPort} : ${e.address} . ${e.containerPort}`,
    ),
    map(
      'dnat_bound',
      'Exposures bound to one host address: address . protocol . host port -> container address . port.',
      'ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service',
      plan.dnatBound,
      (e) => `${e.hostIp} . ${e.proto} . ${e.hostPort} : ${e.address} . ${e.containerPort}`,
    ),
    CHAINS,
  ];
  return blocks.flatMap((b) => ['', ...b]);
}

function set(name: string, why: string, type: string, interval: boolean, elements: string[]): string[] {
  return container('set', name, why, type, interval, elements.map((e) => ({ element: e })));
}

function map(
  name: string,
  why: string,
  type: string,
  groups: EndpointGroup<DnatEntry>[],
  format: (e: DnatEntry) => string,
): string[] {
  const lines: Line[] = [];
  for (const g of groups) {
    lines.push({ comment: `${g.hostIf} ${g.address}` });
    for (const item of g.items) lines.push({ element: format(item) });
  }
  return container('map', name, why, type, false, lines);
}

type Line = { element: string } | { comment: string };

function container(kind: 'set' | 'map', name: string, why: string, type: string, interval: boolean, lines: Line[]): string[] {
  const out = [`\t# ${why}`, `\t${kind} ${name} {`, `\t\ttype ${type}`];
  if (interval) out.push('\t\tflags interval');
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

/** The chains never change with the model: one more endpoint or exposure is one more element. */
const CHAINS: string[] = `
	# Before conntrack, so a packet that lies about its origin never creates state.
	chain prerouting_raw {
		type filter hook prerouting priority raw; policy accept;
		# A pn veth carries exactly one container: only its address may be the source.
		iifname "pn*" iifname . ip saddr != @endpoint_sources counter drop
		# pn veths have route_localnet=1 (needed for localhost DNAT replies); containers must
		# still not reach the host's loopback services through it.
		iifname "pn*" ip daddr 127.0.0.0/8 counter drop
		# moby#45610: a loopback-bound exposure is for the host alone, whatever arrives elsewhere.
		iifname != "lo" ip daddr . meta l4proto . th dport @loopback_exposures counter drop
	}

	# Exposures, for traffic addressed to this host only (CVE-2025-67499 shows why).
	chain prerouting_nat {
		type nat hook prerouting priority dstnat; policy accept;
		# Loopback destinations are never translated for packets from outside (moby#45610).
		ip daddr 127.0.0.0/8 return
		fib daddr type local jump exposures
	}

	# The host's own connections to an exposure, 127.0.0.1 included (no userland proxy).
	chain output_nat {
		type nat hook output priority -100; policy accept;
		fib daddr type local jump exposures
	}

	chain exposures {
		dnat ip to ip daddr . meta l4proto . th dport map @dnat_bound
		dnat ip to meta l4proto . th dport map @dnat_any
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		# Endpoints are IPv4-only: nothing IPv6 is routed to or from them.
		iifname "pn*" meta nfproto ipv6 counter drop
		oifname "pn*" meta nfproto ipv6 counter drop
		oifname "pn*" jump to_endpoint
		ip daddr @pools jump to_endpoint
	}

	# New connections to a container; the host's own processes never come through here.
	chain to_endpoint {
		ct state established,related accept
		ct state invalid counter drop
		ip daddr . meta l4proto . th dport @exposed_direct accept
		# portnet's DNAT only exists for exposures, so a DNATed connection to an exposed port is one.
		ct status dnat ip daddr . meta l4proto . th dport @exposed_dnat accept
		# Same network: sources on pn veths were checked in prerouting_raw.
		iifname "pn*" ip saddr . ip daddr @icc_pairs accept
		counter drop
	}

	chain postrouting_nat {
		type nat hook postrouting priority srcnat; policy accept;
		# A container cannot answer 127.0.0.1.
		oifname "pn*" ip saddr 127.0.0.0/8 masquerade
		# A container would drop a packet from its own address; other hairpin clients keep theirs.
		oifname "pn*" ct status dnat ip saddr . ip daddr @hairpin_self masquerade
		oifname != "pn*" ip saddr @masquerade_pools masquerade
	}`
  .slice(1)
  .split('\n');
