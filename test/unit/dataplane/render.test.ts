import { describe, expect, it } from 'vitest';
import type { FirewallModel } from '../../../src/dataplane/model.js';
import { planRuleset } from '../../../src/dataplane/nft/plan.js';
import { renderRemoval, renderRuleset } from '../../../src/dataplane/nft/render.js';
import { FirewallModelError } from '../../../src/dataplane/nft/syntax.js';
import { GOLDEN_MODELS, endpoint, network, port, tcp, udp } from './fixtures.js';

const net1 = network(1);
const net2 = network(2);
const model = (...endpoints: FirewallModel['endpoints']): FirewallModel => ({ networks: [net1, net2], endpoints });

function rejects(m: FirewallModel, message: RegExp): void {
  expect(() => renderRuleset(m)).toThrow(FirewallModelError);
  expect(() => renderRuleset(m)).toThrow(message);
}

/** The text of one set or map block, `set NAME {` … `}`. */
function block(text: string, name: string): string {
  const start = text.search(new RegExp(`\\t(set|map) ${name} \\{`));
  return text.slice(start, text.indexOf('\n\t}', start) + 3);
}

describe('renderRuleset', () => {
  it('does not depend on the order of networks, endpoints and exposures', () => {
    const a = GOLDEN_MODELS['two-networks']!;
    const b: FirewallModel = {
      networks: [...a.networks].reverse(),
      endpoints: [...a.endpoints].reverse().map((e) => ({ ...e, exposures: [...e.exposures].reverse() })),
    };
    expect(renderRuleset(b)).toBe(renderRuleset(a));
  });

  it('scales by elements: every model gets the same chains', () => {
    const chains = (text: string) => text.slice(text.indexOf('\tchain prerouting_raw'));
    const reference = chains(renderRuleset(GOLDEN_MODELS.empty!));
    for (const m of Object.values(GOLDEN_MODELS)) expect(chains(renderRuleset(m))).toBe(reference);
  });

  it('expands a port range into one DNAT element per port, keeping the offset', () => {
    const text = renderRuleset(model(endpoint(net1, 1, [port('udp', 7000, 7002, 5000, 5002)])));
    expect(block(text, 'dnat_any')).toContain(
      ['udp . 7000 : 198.18.1.2 . 5000,', 'udp . 7001 : 198.18.1.2 . 5001,', 'udp . 7002 : 198.18.1.2 . 5002'].join(
        '\n\t\t\t',
      ),
    );
    // So does the allow set: plain hash sets, whose elements cost the same to add and delete at any size.
    expect(block(text, 'exposed_direct')).toContain(
      ['198.18.1.2 . udp . 5000,', '198.18.1.2 . udp . 5001,', '198.18.1.2 . udp . 5002'].join('\n\t\t\t'),
    );
    expect(block(text, 'exposed_direct')).not.toContain('flags interval');
  });

  it('lists a container port once when several exposures lead to it', () => {
    const text = renderRuleset(model(endpoint(net1, 1, [tcp(8080, 80), port('tcp', 7078, 7082, 78, 82), tcp(8443, 443)])));
    const elements = block(text, 'exposed_direct').split('\n').filter((l) => l.includes(' . tcp . '));
    expect(elements.map((l) => l.trim().replace(/,$/, ''))).toEqual(
      [78, 79, 80, 81, 82, 443].map((p) => `198.18.1.2 . tcp . ${p}`),
    );
  });

  it('treats 0.0.0.0 as every address of an IPv4-only endpoint', () => {
    const body = (text: string) => text.slice(text.indexOf('table inet portnet {'));
    const any = renderRuleset(model(endpoint(net1, 1, [tcp(8080, 80)])));
    expect(body(renderRuleset(model(endpoint(net1, 1, [tcp(8080, 80, '0.0.0.0')]))))).toBe(body(any));
  });

  it('treats all of 127.0.0.0/8 as loopback', () => {
    const text = renderRuleset(model(endpoint(net1, 1, [tcp(5432, 5432, '127.0.0.2')])));
    expect(block(text, 'loopback_exposures')).toContain('127.0.0.2 . tcp . 5432');
    expect(block(text, 'exposed_dnat')).not.toContain('5432');
  });

  it('keeps a host-IP-bound exposure off the direct allow set', () => {
    const text = renderRuleset(model(endpoint(net1, 1, [udp(5353, 53, '198.51.100.1')])));
    expect(block(text, 'exposed_direct')).not.toContain('elements');
    expect(block(text, 'exposed_dnat')).toContain('198.18.1.2 . udp . 53');
    expect(block(text, 'dnat_bound')).toContain('198.51.100.1 . udp . 5353 : 198.18.1.2 . 53');
  });

  it('leaves out IPv6 host addresses, and says so in the header', () => {
    const text = renderRuleset(model(endpoint(net1, 1, [tcp(80, 80, '::')])));
    expect(text).toContain('#     not applied: [::]:80->80/tcp (IPv6 host address');
    expect(block(text, 'dnat_any')).not.toContain('elements');
    expect(block(text, 'dnat_bound')).not.toContain('elements');
  });

  it('lists icc pairs only for networks with icc on, for every pool pair', () => {
    const multi = network(1, { pools: ['198.18.1.0/24', '198.18.3.0/25'] });
    const off = network(2, { icc: false });
    const plan = planRuleset({ networks: [multi, off], endpoints: [] });
    expect(plan.iccPairs).toEqual([
      ['198.18.1.0/24', '198.18.1.0/24'],
      ['198.18.1.0/24', '198.18.3.0/25'],
      ['198.18.3.0/25', '198.18.1.0/24'],
      ['198.18.3.0/25', '198.18.3.0/25'],
    ]);
  });

  it('canonicalises pools and puts only masquerading networks in masquerade_pools', () => {
    const plan = planRuleset({
      networks: [network(1, { pools: ['198.18.1.77/24'] }), network(2, { masquerade: false })],
      endpoints: [],
    });
    expect(plan.pools).toEqual(['198.18.1.0/24', '198.18.2.0/24']);
    expect(plan.masqueradePools).toEqual(['198.18.1.0/24']);
  });

  it('names another table when asked, and removal is a safe add+delete', () => {
    expect(renderRuleset(GOLDEN_MODELS.empty!, { table: 'portnet_b' })).toContain('table inet portnet_b {');
    expect(renderRemoval()).toBe('add table inet portnet\ndelete table inet portnet\n');
    expect(() => renderRemoval({ table: 'x; flush ruleset' })).toThrow(FirewallModelError);
  });
});

describe('renderRuleset refuses models it cannot render faithfully', () => {
  it('an interface name that is not pn + 11 hex (it would be pasted into the script)', () => {
    rejects(model({ ...endpoint(net1, 1), hostIf: 'pn0" ; flush ruleset' }), /endpoint interface/);
    rejects(model({ ...endpoint(net1, 1), hostIf: 'eth0' }), /endpoint interface/);
  });

  it('addresses that are not IPv4, or outside the network', () => {
    rejects(model({ ...endpoint(net1, 1), address: '198.18.1.256' }), /not an IPv4 address/);
    rejects(model({ ...endpoint(net1, 1), address: '198.18.01.2' }), /not an IPv4 address/);
    rejects(model({ ...endpoint(net1, 1), address: '198.18.2.2' }), /outside the pools/);
    rejects(model(endpoint(net1, 1, [tcp(80, 80, '198.51.100.1\nflush ruleset')])), /not an IP address/);
  });

  it('an endpoint of an unknown network, or duplicates', () => {
    rejects(model({ ...endpoint(net1, 1), networkId: 'nope' }), /unknown network/);
    rejects(model(endpoint(net1, 1), { ...endpoint(net1, 2), address: '198.18.1.2' }), /duplicate endpoint address/);
    rejects(model(endpoint(net1, 1), { ...endpoint(net1, 2), hostIf: endpoint(net1, 1).hostIf }), /duplicate endpoint interface/);
    rejects({ networks: [net1, { ...net2, index: 1 }], endpoints: [] }, /duplicate network index/);
  });

  it('overlapping pools', () => {
    rejects({ networks: [net1, network(2, { pools: ['198.18.0.0/16'] })], endpoints: [] }, /overlaps/);
  });

  it('bad ports and ranges', () => {
    rejects(model(endpoint(net1, 1, [tcp(0, 80)])), /not a port number/);
    rejects(model(endpoint(net1, 1, [tcp(70000, 80)])), /not a port number/);
    rejects(model(endpoint(net1, 1, [port('tcp', 7000, 7002, 5000, 5003)])), /differ in length/);
    rejects(model(endpoint(net1, 1, [port('tcp', 7002, 7000, 5002, 5000)])), /ends before it starts/);
    rejects(model(endpoint(net1, 1, [{ ...tcp(80), proto: 'icmp' as 'tcp' }])), /unknown protocol/);
  });

  it('two holders of one host port, naming both (never last-write-wins)', () => {
    const a = endpoint(net1, 1, [tcp(8080, 80)]);
    const b = endpoint(net1, 2, [port('tcp', 8000, 8100, 9000, 9100)]);
    rejects(model(a, b), new RegExp(`host port 8080/tcp is exposed by both endpoint ${a.id} and endpoint ${b.id}`));
    rejects(
      model(a, endpoint(net1, 2, [tcp(8080, 80, '198.51.100.1')])),
      /exposed on all addresses by endpoint .* and on 198\.51\.100\.1 by endpoint/,
    );
    rejects(model(endpoint(net1, 1, [tcp(5432, 5432, '127.0.0.1')]), endpoint(net1, 2, [tcp(5432, 5432, '127.0.0.1')])), /127\.0\.0\.1:5432/);
    // Same port, different protocols or different bound addresses: no conflict.
    expect(() => renderRuleset(model(a, endpoint(net1, 2, [udp(8080, 80)])))).not.toThrow();
    expect(() =>
      renderRuleset(model(endpoint(net1, 1, [tcp(9, 9, '198.51.100.1')]), endpoint(net1, 2, [tcp(9, 9, '198.51.100.2')]))),
    ).not.toThrow();
  });
});
