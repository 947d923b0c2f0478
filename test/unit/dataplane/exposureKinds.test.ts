import { describe, expect, it } from 'vitest';
import { udpFlushTargets } from '../../../src/dataplane/conntrack.js';
import type { FirewallModel } from '../../../src/dataplane/model.js';
import { planElements } from '../../../src/dataplane/nft/elements.js';
import { TableContents } from '../../../src/dataplane/nft/incremental.js';
import { planRuleset } from '../../../src/dataplane/nft/plan.js';
import { renderRuleset } from '../../../src/dataplane/nft/render.js';
import { FirewallModelError } from '../../../src/dataplane/nft/syntax.js';
import { endpoint, endpoint6, from, network, network6, on, port, tcp, udp } from './fixtures.js';

/** Allowlists, interface binding and IPv6: what lands in which set, and what is refused. */

const net1 = network(1);
const dual = network6(3);
const model = (...endpoints: FirewallModel['endpoints']): FirewallModel => ({ networks: [net1, dual], endpoints });

/** Element texts of one set, as the full ruleset lists them. */
function elements(m: FirewallModel, set: string): string[] {
  const all = planElements(planRuleset(m)) as Map<string, { key: string; value?: string }[]>;
  const list = all.get(set);
  if (!list) throw new Error(`no set ${set}`);
  return list.map((e) => (e.value === undefined ? e.key : `${e.key} : ${e.value}`));
}

function rejects(m: FirewallModel, message: RegExp): void {
  expect(() => renderRuleset(m)).toThrow(FirewallModelError);
  expect(() => renderRuleset(m)).toThrow(message);
}

describe('source allowlists', () => {
  it('guard the host port before DNAT, and the container port on the direct path', () => {
    const m = model(endpoint(net1, 1, [from(tcp(8080, 80), '10.0.0.0/8', '198.51.100.7/32')]));
    expect(elements(m, 'guard_any')).toEqual(['tcp . 8080']);
    expect(elements(m, 'allow_any')).toEqual(['tcp . 8080 . 10.0.0.0/8', 'tcp . 8080 . 198.51.100.7']);
    expect(elements(m, 'exposed_direct')).toEqual([]);
    expect(elements(m, 'exposed_direct_from')).toEqual(['198.18.1.2 . tcp . 80 . 10.0.0.0/8', '198.18.1.2 . tcp . 80 . 198.51.100.7']);
    // Every DNATed packet passed the guard: the DNAT path stays source-less.
    expect(elements(m, 'exposed_dnat')).toEqual(['198.18.1.2 . tcp . 80']);
    expect(elements(m, 'dnat_any')).toEqual(['tcp . 8080 : 198.18.1.2 . 80']);
  });

  it('keep exposures without one in the plain hash sets, and nothing in the guard sets', () => {
    const m = model(endpoint(net1, 1, [tcp(8080, 80), udp(5353, 53, '198.51.100.1'), on('eth0', tcp(8443, 443))]));
    for (const set of ['guard_any', 'allow_any', 'guard_bound', 'allow_bound', 'guard_iface', 'allow_iface', 'exposed_direct_from']) {
      expect(elements(m, set), set).toEqual([]);
    }
    expect(elements(m, 'exposed_direct')).toEqual(['198.18.1.2 . tcp . 80']);
  });

  it('`any` (both /0) is no allowlist at all', () => {
    const open = model(endpoint(net1, 1, [tcp(8080, 80)]));
    const any = model(endpoint(net1, 1, [from(tcp(8080, 80), '0.0.0.0/0', '::/0')]));
    expect([...planElements(planRuleset(any))]).toEqual([...planElements(planRuleset(open))]);
    expect(renderRuleset(any)).toContain('*:8080->80/tcp@any');
  });

  it('a list of the other family only refuses every client of this one', () => {
    const m = model(endpoint(net1, 1, [from(tcp(8080, 80), '2001:db8::/32')]));
    expect(elements(m, 'guard_any')).toEqual(['tcp . 8080']);
    expect(elements(m, 'allow_any')).toEqual([]);
    expect(elements(m, 'exposed_direct')).toEqual([]);
    expect(elements(m, 'exposed_direct_from')).toEqual([]);
  });

  it('bound and interface exposures: guarded by address or interface, never on the direct path', () => {
    const m = model(endpoint(net1, 1, [from(tcp(9090, 90, '198.51.100.1'), '192.0.2.0/24'), from(on('eth0', udp(5353, 53)), '10.0.0.0/8')]));
    expect(elements(m, 'guard_bound')).toEqual(['198.51.100.1 . tcp . 9090']);
    expect(elements(m, 'allow_bound')).toEqual(['198.51.100.1 . tcp . 9090 . 192.0.2.0/24']);
    expect(elements(m, 'guard_iface')).toEqual(['"eth0" . udp . 5353']);
    expect(elements(m, 'allow_iface')).toEqual(['"eth0" . udp . 5353 . 10.0.0.0/8']);
    expect(elements(m, 'exposed_direct_from')).toEqual([]);
  });

  it('drops nested ranges (the kernel refuses overlapping elements) and merges lists per container port', () => {
    const m = model(
      endpoint(net1, 1, [
        from(tcp(8080, 80), '10.0.0.0/8', '10.1.0.0/16', '10.1.2.3/32'),
        from(tcp(8081, 80), '10.2.0.0/16', '192.0.2.0/24'),
        from(tcp(8082, 82), '203.0.113.0/24'),
        tcp(8083, 82),
      ]),
    );
    expect(elements(m, 'allow_any')).toEqual([
      'tcp . 8080 . 10.0.0.0/8',
      'tcp . 8081 . 10.2.0.0/16',
      'tcp . 8081 . 192.0.2.0/24',
      'tcp . 8082 . 203.0.113.0/24',
    ]);
    // Port 82 is open to anyone through 8083, so its direct path needs no list.
    expect(elements(m, 'exposed_direct_from')).toEqual(['198.18.1.2 . tcp . 80 . 10.0.0.0/8', '198.18.1.2 . tcp . 80 . 192.0.2.0/24']);
    expect(elements(m, 'exposed_direct')).toEqual(['198.18.1.2 . tcp . 82']);
  });

  it('expand port ranges port by port, and canonicalise the sources', () => {
    const m = model(endpoint(net1, 1, [from(port('udp', 7000, 7001, 5000, 5001), '10.1.2.3/8', '2001:DB8:0::/32')]));
    expect(elements(m, 'allow_any')).toEqual(['udp . 7000 . 10.0.0.0/8', 'udp . 7001 . 10.0.0.0/8']);
    expect(renderRuleset(m)).toContain('*:7000-7001->5000-5001/udp@10.0.0.0/8+2001:db8::/32');
  });

  it('are ignored on loopback exposures (only the host uses them, and it is never filtered)', () => {
    const m = model(endpoint(net1, 1, [from(tcp(5432, 5432, '127.0.0.1'), '10.0.0.0/8')]));
    expect(elements(m, 'guard_bound')).toEqual([]);
    expect(elements(m, 'allow_bound')).toEqual([]);
    expect(elements(m, 'dnat_bound')).toEqual(['127.0.0.1 . tcp . 5432 : 198.18.1.2 . 5432']);
  });

  it('refuse what is not a CIDR (it would be pasted into the script)', () => {
    rejects(model(endpoint(net1, 1, [from(tcp(80), '10.0.0.0/8 }')])), /source/);
    rejects(model(endpoint(net1, 1, [from(tcp(80), '10.0.0.0/33')])), /prefix/);
    rejects(model(endpoint(net1, 1, [from(tcp(80), 'any')])), /source/);
  });
});

describe('interface binding', () => {
  it('DNATs by interface name, only once DNATed, with no hairpin', () => {
    const m = model(endpoint(net1, 1, [on('eth0', tcp(8080, 80)), on('wlan0', tcp(8080, 81))]));
    expect(elements(m, 'dnat_iface')).toEqual(['"eth0" . tcp . 8080 : 198.18.1.2 . 80', '"wlan0" . tcp . 8080 : 198.18.1.2 . 81']);
    expect(elements(m, 'exposed_dnat')).toEqual(['198.18.1.2 . tcp . 80', '198.18.1.2 . tcp . 81']);
    expect(elements(m, 'exposed_direct')).toEqual([]);
    expect(elements(m, 'dnat_any')).toEqual([]);
    // A container's packets arrive on its pn veth, never on eth0: it cannot hairpin through it.
    expect(elements(m, 'hairpin_self')).toEqual([]);
    expect(renderRuleset(m)).toContain('%eth0:8080->80/tcp');
  });

  it('covers both families of a dual-stack endpoint', () => {
    const m = model(endpoint6(dual, 1, [on('eth0', udp(5353, 53))]));
    expect(elements(m, 'dnat_iface')).toEqual(['"eth0" . udp . 5353 : 198.18.3.2 . 53']);
    expect(elements(m, 'dnat_iface6')).toEqual(['"eth0" . udp . 5353 : 2001:db8:3::2 . 53']);
  });

  it('conflicts with all-address and IP-bound exposures of the port, not with loopback or other interfaces', () => {
    const a = endpoint(net1, 1, [on('eth0', tcp(8080, 80))]);
    rejects(model(a, endpoint(net1, 2, [tcp(8080, 80)])), /host port 8080\/tcp is exposed on interface eth0 by endpoint .* and on all addresses by endpoint/);
    rejects(model(a, endpoint(net1, 2, [tcp(8080, 80, '198.51.100.1')])), /on interface eth0 by .* and on 198\.51\.100\.1 by/);
    rejects(model(a, endpoint(net1, 2, [on('eth0', tcp(8080, 81))])), /host port %eth0:8080\/tcp is exposed by both/);
    expect(() => renderRuleset(model(a, endpoint(net1, 2, [on('eth1', tcp(8080, 80))])))).not.toThrow();
    expect(() => renderRuleset(model(a, endpoint(net1, 2, [tcp(8080, 80, '127.0.0.1')])))).not.toThrow();
    expect(() => renderRuleset(model(a, endpoint(net1, 2, [udp(8080, 80)])))).not.toThrow();
  });

  it('refuses names that are not plain interface names', () => {
    for (const bad of ['', 'eth0"', 'a'.repeat(16), '-eth0', '.x', 'eth 0', 'eth0/1']) {
      rejects(model(endpoint(net1, 1, [on(bad, tcp(80))])), /host interface/);
    }
    expect(() => renderRuleset(model(endpoint(net1, 1, [on('br-1a2b.100', tcp(80))])))).not.toThrow();
    rejects(model(endpoint(net1, 1, [{ ...tcp(80, 80, '198.51.100.1'), hostIface: 'eth0' }])), /not both/);
  });
});

describe('IPv6', () => {
  it('an exposure without host IP covers both families; 0.0.0.0 and :: one each', () => {
    const m = model(endpoint6(dual, 1, [tcp(8080, 80), tcp(8081, 81, '0.0.0.0'), tcp(8082, 82, '::')]));
    expect(elements(m, 'dnat_any')).toEqual(['tcp . 8080 : 198.18.3.2 . 80', 'tcp . 8081 : 198.18.3.2 . 81']);
    expect(elements(m, 'dnat_any6')).toEqual(['tcp . 8080 : 2001:db8:3::2 . 80', 'tcp . 8082 : 2001:db8:3::2 . 82']);
    expect(elements(m, 'exposed_direct6')).toEqual(['2001:db8:3::2 . tcp . 80', '2001:db8:3::2 . tcp . 82']);
    expect(elements(m, 'hairpin_self6')).toEqual(['2001:db8:3::2 . 2001:db8:3::2']);
    expect(elements(m, 'endpoint_sources6')).toEqual(['"pn31c0ffee000" . 2001:db8:3::2']);
    expect(elements(m, 'pools6')).toEqual(['2001:db8:3::/64']);
    expect(elements(m, 'icc_pairs6')).toEqual(['2001:db8:3::/64 . 2001:db8:3::/64']);
  });

  it('binds to one IPv6 address or ::1, in canonical spelling', () => {
    const m = model(endpoint6(dual, 1, [tcp(9090, 90, '2001:DB8:0:0::1'), tcp(5432, 5432, '0:0::1'), udp(5454, 54, '::ffff:127.0.0.1')]));
    expect(elements(m, 'dnat_bound6')).toEqual(['::1 . tcp . 5432 : 2001:db8:3::2 . 5432', '2001:db8::1 . tcp . 9090 : 2001:db8:3::2 . 90']);
    expect(elements(m, 'loopback_exposures6')).toEqual(['::1 . tcp . 5432']);
    expect(elements(m, 'exposed_dnat6')).toEqual(['2001:db8:3::2 . tcp . 90']);
    // An IPv4-mapped address is the IPv4 address, as Docker spells it.
    expect(elements(m, 'loopback_exposures')).toEqual(['127.0.0.1 . udp . 5454']);
  });

  it('leaves IPv6 host addresses of an IPv4-only endpoint out, and says so', () => {
    const m = model(endpoint(dual, 1, [tcp(8080, 80), tcp(8082, 82, '::'), tcp(9090, 90, '2001:db8::1')]));
    expect(elements(m, 'dnat_any')).toEqual(['tcp . 8080 : 198.18.3.2 . 80']);
    expect(elements(m, 'dnat_any6')).toEqual([]);
    expect(elements(m, 'dnat_bound6')).toEqual([]);
    expect(elements(m, 'endpoint_sources6')).toEqual([]);
    const text = renderRuleset(m);
    expect(text).toContain('#     not applied: [::]:8082->82/tcp (IPv6 host address');
    expect(text).toContain('#     not applied: [2001:db8::1]:9090->90/tcp (IPv6 host address');
  });

  it('allowlists per family: each family gets its own sources', () => {
    const m = model(endpoint6(dual, 1, [from(tcp(8080, 80), '10.0.0.0/8', '2001:db8:ff::/48')]));
    expect(elements(m, 'allow_any')).toEqual(['tcp . 8080 . 10.0.0.0/8']);
    expect(elements(m, 'allow_any6')).toEqual(['tcp . 8080 . 2001:db8:ff::/48']);
    expect(elements(m, 'exposed_direct_from6')).toEqual(['2001:db8:3::2 . tcp . 80 . 2001:db8:ff::/48']);
    const one = model(endpoint6(dual, 1, [from(tcp(8080, 80, '2001:db8::1'), '2001:db8:ff::7')]));
    expect(elements(one, 'allow_bound6')).toEqual(['2001:db8::1 . tcp . 8080 . 2001:db8:ff::7']);
    expect(elements(one, 'guard_bound')).toEqual([]);
  });

  it('keeps the families apart in conflicts', () => {
    const v4 = endpoint6(dual, 1, [tcp(8080, 80, '0.0.0.0')]);
    const v6 = endpoint6(dual, 2, [tcp(8080, 80, '::')]);
    expect(() => renderRuleset(model(v4, v6))).not.toThrow();
    rejects(model(v6, endpoint6(dual, 3, [tcp(8080, 81)])), /host port \[::\]:8080\/tcp is exposed by both/);
    rejects(
      model(v6, endpoint6(dual, 3, [tcp(8080, 81, '2001:db8::1')])),
      /exposed on all IPv6 addresses by .* and on 2001:db8::1 by/,
    );
    // Without an IPv6 address the all-address exposure claims nothing in IPv6.
    expect(() => renderRuleset(model(v6, endpoint(dual, 3, [tcp(8080, 81, '198.51.100.1')])))).not.toThrow();
  });

  it('refuses addresses outside the IPv6 pools, duplicates, and overlapping IPv6 pools', () => {
    rejects(model({ ...endpoint6(dual, 1), address6: '2001:db8:9::1' }), /IPv6 address 2001:db8:9::1 is outside the IPv6 pools/);
    rejects(model({ ...endpoint(net1, 1), address6: '2001:db8:1::1' }), /outside the IPv6 pools/);
    rejects(model({ ...endpoint6(dual, 1), address6: '198.18.3.9' }), /not an IPv6 address/);
    rejects(model(endpoint6(dual, 1), { ...endpoint6(dual, 2), address6: '2001:db8:3:0::2' }), /duplicate endpoint IPv6 address 2001:db8:3::2/);
    rejects({ networks: [dual, network6(4, { pools6: ['2001:db8::/32'] })], endpoints: [] }, /pool 2001:db8:3::\/64 .* overlaps pool 2001:db8::\/32/);
    rejects({ networks: [network6(4, { pools6: ['10.0.0.0/8'] })], endpoints: [] }, /not an IPv6 CIDR/);
  });
});

describe('element keys as the UDP conntrack flush reads them', () => {
  it('gives one target per changed UDP host port, with the host IP of bound exposures only', () => {
    const before = model(endpoint6(dual, 1, [udp(5353, 53), tcp(8080, 80)]));
    const after = model(
      endpoint6(dual, 1, [tcp(8080, 80)]),
      endpoint6(dual, 2, [udp(5353, 53), udp(5454, 54, '198.51.100.1'), udp(5455, 55, '2001:db8::1'), on('eth0', udp(5456, 56))]),
    );
    const t = TableContents.fromPlan(planRuleset(before), before).transition(after);
    const targets = udpFlushTargets([...t.delta.deletes, ...t.delta.adds]);
    const key = (x: { family: number; port: number; hostIp?: string }) => `${x.family} ${x.port} ${x.hostIp ?? '*'}`;
    expect(targets.map(key).sort()).toEqual(
      ['4 5353 *', '6 5353 *', '4 5454 198.51.100.1', '6 5455 2001:db8::1', '4 5456 *', '6 5456 *'].sort(),
    );
  });
});
