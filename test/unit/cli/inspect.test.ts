import { describe, expect, it } from 'vitest';
import { inspectTarget, nftFor, renderInspect, resolveTarget } from '../../../src/cli/inspect.js';
import type { KernelFacts } from '../../../src/cli/kernel.js';
import { expectedElements, type LiveTable } from '../../../src/cli/nftJson.js';
import { ep, NET, NET2, populated, views } from './support.js';

async function setup() {
  const { p, addresses } = await populated();
  const { state, firewall } = await views(p);
  // Names as if learnt from Docker.
  state.networks.find((n) => n.id === NET)!.name = 'web';
  state.networks.find((n) => n.id === NET2)!.name = 'db';
  state.endpoints.find((e) => e.id === ep(1))!.container = { id: 'c1'.repeat(32), name: 'site' };
  state.endpoints.find((e) => e.id === ep(2))!.container = { id: 'c2'.repeat(32), name: 'site-worker' };
  const expected = expectedElements(firewall.model);
  const table: LiveTable = {
    name: 'portnet',
    sets: new Map([...expected].map(([name, elements]) => [name, { name, kind: name.startsWith('dnat_') ? ('map' as const) : ('set' as const), elements: [...elements] }])),
    chains: new Map([
      ['exposures', { name: 'exposures', rules: [{ chain: 'exposures', text: 'dnat ip to meta l4proto . th dport map @dnat_any', uses: ['dnat_any'] }] }],
    ]),
  };
  const e1 = state.endpoints.find((e) => e.id === ep(1))!;
  const kernel: KernelFacts = {
    nft: { version: 'nftables v1.0.6' },
    table,
    ipForward: '1',
    iptables: { jumps: 1, chainExists: true, dockerUser: [] },
    gatewayRoute: { dev: 'eth0' },
    routes: [
      { type: 'unreachable', dst: '198.18.1.0/24', metric: 3999 },
      { type: 'unicast', dst: e1.address, dev: e1.hostIf },
    ],
    links: [{ name: e1.hostIf, up: true }],
    sysctls: { [e1.hostIf]: { proxyArp: '1', forwarding: '1' } },
  };
  return { state, firewall, kernel, addresses, e1 };
}

const kindOf = (t: ReturnType<typeof resolveTarget>) => (t.kind === 'endpoint' ? `endpoint ${t.endpoint.id}` : `network ${t.network.id}`);

describe('portnet inspect: what a name means', () => {
  it('takes an exact ID, name, link or address first, then a unique prefix', async () => {
    const { state, e1, addresses } = await setup();
    expect(kindOf(resolveTarget(state, 'site'))).toBe(`endpoint ${ep(1)}`); // exact beats the prefix of site-worker
    expect(kindOf(resolveTarget(state, 'site-w'))).toBe(`endpoint ${ep(2)}`);
    expect(kindOf(resolveTarget(state, ep(1).slice(0, 6)))).toBe(`endpoint ${ep(1)}`);
    expect(kindOf(resolveTarget(state, e1.hostIf))).toBe(`endpoint ${ep(1)}`);
    expect(kindOf(resolveTarget(state, addresses[2]!))).toBe(`endpoint ${ep(3)}`);
    expect(kindOf(resolveTarget(state, 'c2c2'))).toBe(`endpoint ${ep(2)}`);
    expect(kindOf(resolveTarget(state, 'WEB'))).toBe(`network ${NET}`);
    expect(kindOf(resolveTarget(state, 'cdcd'))).toBe(`network ${NET2}`);
  });

  it('lists the candidates when a prefix is ambiguous, and says when nothing matches', async () => {
    const { state } = await setup();
    expect(() => resolveTarget(state, 's')).toThrow(/"s" matches 2 things; say more:\n {2}endpoint .*container site,.*\n {2}endpoint .*container site-worker/);
    expect(() => resolveTarget(state, 'nope')).toThrow('no endpoint or network of portnet matches "nope"');
    // An address is never matched by prefix: 198.18.1.2 must not find 198.18.1.20.
    expect(() => resolveTarget(state, '198.18')).toThrow(/no endpoint or network/);
  });
});

describe('portnet inspect: an endpoint in full', () => {
  it('shows its record, exposures, kernel link and route, and the live elements with the rules that read them', async () => {
    const { state, firewall, kernel, e1, addresses } = await setup();
    const x = inspectTarget(state, resolveTarget(state, 'site'), firewall, kernel);
    expect(x.kind).toBe('endpoint');
    const text = renderInspect(x);
    expect(text).toMatch(/^container {2}site \(c1c1c1c1c1c1\)$/m);
    expect(text).toMatch(/^network {4}web \(abababababab\)$/m);
    expect(text).toContain(`*:8080 → 80/tcp   from any   (com.example.expose)`);
    expect(text).toContain(`127.0.0.1:5432 → 5432/tcp   from this host only   (com.example.expose)`);
    expect(text).toContain(`*:9443 → 443/tcp   from any   (-p)`);
    expect(text).toContain(`link ${e1.hostIf}: up, proxy_arp 1, forwarding 1`);
    expect(text).toContain(`route ${addresses[0]} dev ${e1.hostIf}`);
    expect(text).toContain(`map dnat_any: exposures on all host addresses`);
    expect(text).toContain(`    tcp . 8080 : ${addresses[0]} . 80\n`);
    expect(text).toContain('used by exposures: dnat ip to meta l4proto . th dport map @dnat_any');
    expect(text).toContain(`    127.0.0.1 . tcp . 5432\n`); // loopback_exposures is keyed by the host address
    expect(text).not.toContain(addresses[1]!); // nothing of the other endpoint
    expect(text).not.toContain('MISSING');
  });

  it('marks what the state wants and the kernel lacks, and what the kernel has beyond the state', async () => {
    const { state, firewall, kernel, addresses } = await setup();
    const dnat = kernel.table!.sets.get('dnat_any')!;
    dnat.elements = dnat.elements.filter((e) => !e.startsWith('tcp . 8080 '));
    kernel.table!.sets.get('exposed_direct')!.elements.push(`${addresses[0]} . tcp . 22`);
    const nft = nftFor(resolveTarget(state, 'site'), firewall, kernel);
    const els = nft.sets.flatMap((s) => s.elements.map((e) => ({ set: s.name, ...e })));
    expect(els).toContainEqual({ set: 'dnat_any', element: `tcp . 8080 : ${addresses[0]} . 80`, live: false, expected: true });
    expect(els).toContainEqual({ set: 'exposed_direct', element: `${addresses[0]} . tcp . 22`, live: true, expected: false });
    const text = renderInspect(inspectTarget(state, resolveTarget(state, 'site'), firewall, kernel));
    expect(text).toContain(`MISSING tcp . 8080 : ${addresses[0]} . 80    (portnet's state has it; the kernel does not)`);
    expect(text).toContain(`${addresses[0]} . tcp . 22    (in the kernel only: not in portnet's state)`);
  });

  it('says the link and route are missing for a joined endpoint the kernel lost, and when the table is gone', async () => {
    const { state, firewall, kernel } = await setup();
    kernel.links = [];
    kernel.routes = [];
    delete kernel.table;
    kernel.tableError = 'absent';
    const text = renderInspect(inspectTarget(state, resolveTarget(state, 'site-worker'), firewall, kernel));
    expect(text).toMatch(/link pn\w+: MISSING/);
    expect(text).toMatch(/route 198\.18\.1\.\d+\/32: MISSING/);
    expect(text).toContain('cannot show it: table inet portnet is missing');
  });
});

describe('portnet inspect: a network in full', () => {
  it('shows pools with usage, policy, endpoints, its unreachable route and pool elements', async () => {
    const { state, firewall, kernel } = await setup();
    const x = inspectTarget(state, resolveTarget(state, 'db'), firewall, kernel);
    const text = renderInspect(x);
    expect(text).toMatch(/^pools {6}198\.18\.2\.0\/24: 1 of 254 addresses held$/m);
    expect(text).toMatch(/^policy {5}icc off, masquerade on$/m);
    expect(text).toMatch(/^options {4}com\.example\.icc=false$/m);
    expect(text).toContain('route unreachable 198.18.2.0/24: MISSING');
    expect(text).toContain('set pools: every pool of every portnet network');
    expect(text).toContain('    198.18.2.0/24\n');
    expect(text).not.toContain('icc_pairs'); // icc is off: it has no pair
    const view = x as Extract<typeof x, { kind: 'network' }>;
    expect(view.endpoints.map((r) => r.endpoint)).toEqual([ep(3)]);
  });
});
