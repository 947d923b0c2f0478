// fixtures/nft-table.json is `nft -j list table inet portnet` (nft 1.0.6) after `nft -f` of the ruleset
// rendered (renderRuleset) for fixtures/nft-model.json, captured in a scratch network namespace.
// fixtures/nft-intervals.json is `nft -j list table inet t` after `nft -f` of INTERVAL_SCRIPT below, the
// same way: how nft lists interval elements that portnet's model does not produce today.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FirewallModel } from '../../../src/dataplane/model.js';
import { SETS } from '../../../src/dataplane/nft/elements.js';
import {
  SET_PURPOSE,
  elementTokens,
  expectedChains,
  expectedElements,
  formatExpr,
  formatStatement,
  normalizeElement,
  parseNftTable,
  type LiveTable,
} from '../../../src/cli/nftJson.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const model = JSON.parse(fixture('nft-model.json')) as FirewallModel;
const live = parseNftTable(fixture('nft-table.json'));

/** Element by element, as `portnet doctor` compares them. */
function drift(expected: Map<string, string[]>, table: LiveTable): Map<string, { missing: string[]; extra: string[] }> {
  const out = new Map<string, { missing: string[]; extra: string[] }>();
  for (const [name, want] of expected) {
    const have = new Set((table.sets.get(name)?.elements ?? []).map(normalizeElement));
    const wanted = new Set(want);
    const missing = want.filter((e) => !have.has(e));
    const extra = [...have].filter((e) => !wanted.has(e));
    if (missing.length > 0 || extra.length > 0) out.set(name, { missing, extra });
  }
  return out;
}

describe('nft -j, made readable', () => {
  it('reads every set and map with its elements in nft syntax', () => {
    expect(live.name).toBe('portnet');
    expect(live.sets.get('pools')?.elements).toEqual(['198.18.1.0/24', '198.18.2.0/24', '198.18.3.4']);
    expect(live.sets.get('pools6')?.elements).toEqual(['2001:db8:1::/64']);
    expect(live.sets.get('endpoint_sources')?.elements).toContain('pn11bbbbbbbbb . 198.18.1.2');
    expect(live.sets.get('endpoint_sources6')?.elements).toContain('pn11bbbbbbbbb . 2001:db8:1::2');
    expect(live.sets.get('icc_pairs')?.elements).toEqual(['198.18.1.0/24 . 198.18.1.0/24']);
    expect(live.sets.get('dnat_any')).toEqual({
      name: 'dnat_any',
      kind: 'map',
      elements: ['tcp . 8080 : 198.18.1.2 . 80', 'sctp . 8081 : 198.18.2.2 . 81', 'sctp . 8082 : 198.18.2.2 . 82', 'udp . 5353 : 198.18.1.2 . 53'],
    });
    expect(live.sets.get('dnat_bound6')?.elements).toEqual([
      '::1 . tcp . 5433 : 2001:db8:1::2 . 5432',
      '2001:db8:ffff::1 . udp . 9091 : 2001:db8:1::2 . 91',
      '2001:db8:ffff::2 . tcp . 9092 : 2001:db8:1::20 . 92',
    ]);
    // Interface names come unquoted, dotted ones included.
    expect(live.sets.get('dnat_iface')?.elements).toContain('ens3.100 . udp . 6000 : 198.18.1.20 . 60');
    // Concatenated interval elements: a prefix as a prefix, a single address bare.
    expect(live.sets.get('allow_any')?.elements).toEqual(['tcp . 8080 . 10.0.0.0/8', 'tcp . 8080 . 192.0.2.7', 'sctp . 8081 . 198.18.0.0/15']);
    expect(live.sets.get('allow_any6')?.elements).toEqual(['tcp . 8080 . 2001:db8:fe::7', 'tcp . 8080 . 2001:db8:ff::/48']);
    expect(live.sets.get('allow_iface')?.elements).toEqual(['eth0 . tcp . 7070 . 10.1.0.0/16', 'eth0 . tcp . 7071 . 10.1.0.0/16']);
    expect(live.sets.get('exposed_direct_from')?.elements).toContain('198.18.1.2 . tcp . 80 . 192.0.2.7');
  });

  it('reads the rules as nft prints them, with the sets they use', () => {
    const raw = live.chains.get('prerouting_raw')!.rules;
    expect(raw[0]).toEqual({
      chain: 'prerouting_raw',
      text: 'iifname "pn*" iifname . ip saddr != @endpoint_sources counter packets 0 bytes 0 drop',
      uses: ['endpoint_sources'],
    });
    expect(raw[1]!.text).toBe('iifname "pn*" ip6 saddr != { ::, fe80::/10 } iifname . ip6 saddr != @endpoint_sources6 counter packets 0 bytes 0 drop');
    // nft lists `meta nfproto` only where nothing else in the rule implies the family (an ip/ip6 payload does).
    expect(live.chains.get('exposures')!.rules.map((r) => r.text)).toEqual([
      'dnat ip to ip daddr . meta l4proto . th dport map @dnat_bound',
      'dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat_bound6',
      'meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat_any',
      'meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @dnat_any6',
    ]);
    expect(live.chains.get('prerouting_nat')!.rules.map((r) => r.text)).toEqual([
      'ip daddr 127.0.0.0/8 return',
      'ip6 daddr ::1 return',
      'fib daddr type local jump exposures',
      'meta nfproto ipv4 fib daddr . iif type local dnat ip to iifname . meta l4proto . th dport map @dnat_iface',
      'meta nfproto ipv6 fib daddr . iif type local dnat ip6 to iifname . meta l4proto . th dport map @dnat_iface6',
    ]);
    const guard = live.chains.get('prerouting_guard')!;
    expect(guard.hook).toBe('prerouting');
    expect(guard.rules.map((r) => r.text).slice(0, 3)).toEqual([
      'iifname "lo" return',
      'ct direction reply return',
      'fib daddr type local meta l4proto . th dport @guard_any meta l4proto . th dport . ip saddr != @allow_any counter packets 0 bytes 0 drop',
    ]);
    expect(guard.rules[7]).toEqual({
      chain: 'prerouting_guard',
      text: 'fib daddr . iif type local iifname . meta l4proto . th dport @guard_iface6 iifname . meta l4proto . th dport . ip6 saddr != @allow_iface6 counter packets 0 bytes 0 drop',
      uses: ['guard_iface6', 'allow_iface6'],
    });
    expect(live.chains.get('to_endpoint')!.rules[0]!.text).toBe('ct state established,related accept');
    expect(live.chains.get('to_endpoint')!.rules[5]!.text).toBe('ip6 daddr . meta l4proto . th dport . ip6 saddr @exposed_direct_from6 accept');
    expect(live.chains.get('postrouting_nat')!.rules[1]!.text).toBe('oifname "pn*" ip6 saddr ::1 masquerade');
    expect(formatStatement({ frobnicate: { x: 1 } })).toBe('{"frobnicate":{"x":1}}');
  });

  it('prints the other expression shapes nft may use as nft does', () => {
    expect(formatExpr({ fib: { result: 'type', flags: 'daddr' } })).toBe('fib daddr type');
    expect(formatExpr({ ct: { key: 'saddr', dir: 'original', family: 'ip' } })).toBe('ct original ip saddr');
    expect(formatExpr({ meta: { key: 'mark' } })).toBe('meta mark');
    expect(formatExpr({ meta: { key: 'iifgroup' } })).toBe('iifgroup');
    expect(formatExpr({ payload: { base: 'nh', offset: 96, len: 32 } })).toBe('@nh,96,32');
  });
});

describe('the live table against the model', () => {
  const expected = expectedElements(model);

  it('has one entry per set and map of the ruleset, the v6 twins and the interval sets included', () => {
    expect([...expected.keys()]).toEqual(SETS.map((s) => s.name));
    expect([...expected.keys()].sort()).toEqual([...live.sets.keys()].sort());
    // The fixture model is meant to put something in every set, so that every shape is compared below.
    for (const [name, elements] of expected) expect(elements.length, name).toBeGreaterThan(0);
  });

  it('expects exactly what the kernel holds, in every set', () => {
    for (const [name, elements] of expected) expect([...elements].sort(), name).toEqual([...live.sets.get(name)!.elements].sort());
    expect(drift(expected, live)).toEqual(new Map());
    // Interface names as nft lists them: unquoted.
    expect(expected.get('guard_iface6')).toEqual(['eth0 . tcp . 7070', 'eth0 . tcp . 7071']);
    expect(expected.get('endpoint_sources')).toContain('pn11bbbbbbbbb . 198.18.1.2');
  });

  it('shows an element the kernel lost as missing', () => {
    const doc = JSON.parse(fixture('nft-table.json')) as { nftables: Array<{ set?: { name: string; elem: unknown[] } }> };
    const allowAny = doc.nftables.find((i) => i.set?.name === 'allow_any')!.set!;
    allowAny.elem = allowAny.elem.filter((e) => JSON.stringify(e) !== JSON.stringify({ concat: ['tcp', 8080, { prefix: { addr: '10.0.0.0', len: 8 } }] }));
    expect(allowAny.elem).toHaveLength(2);
    expect(drift(expected, parseNftTable(JSON.stringify(doc)))).toEqual(new Map([['allow_any', { missing: ['tcp . 8080 . 10.0.0.0/8'], extra: [] }]]));
  });

  it('knows every chain of the ruleset and how many rules it has', () => {
    const chains = expectedChains(model);
    expect([...chains.keys()].sort()).toEqual([...live.chains.keys()].sort());
    for (const [name, n] of chains) expect(live.chains.get(name)!.rules.length, name).toBe(n);
  });

  it('says what every set is for, from the ruleset\'s own comments', () => {
    for (const name of live.sets.keys()) expect(SET_PURPOSE[name], name).toBeTruthy();
    expect(SET_PURPOSE.pools).toBe('every pool of every portnet network');
    expect(SET_PURPOSE.dnat_any).toMatch(/^exposures on all host addresses: /);
    expect(SET_PURPOSE.allow_iface6).toMatch(/^IPv6: sources allowed on interface-bound exposures with an allowlist: interface \. /);
  });
});

/** What nft was given for fixtures/nft-intervals.json, per set, as the script wrote each element. */
const INTERVAL_SCRIPT: Record<string, string[]> = {
  a: ['tcp . 1 . 0.0.0.0/0', 'tcp . 2 . 10.0.0.1-10.0.0.6', 'tcp . 3 . 10.0.0.8/32', 'tcp . 4 . 10.0.0.0-10.255.255.255'],
  b: ['tcp . 1 . ::/0', 'tcp . 2 . 2001:DB8:0:0:0:0:0:1/128', 'tcp . 3 . 2001:db8::5-2001:db8::9', 'tcp . 4 . ::ffff:10.0.0.0/104'],
  c: ['0.0.0.0/0'],
  d: ['::/0'],
  e: ['2001:db8::1/128', '2001:db8:0:1::5-2001:db8:0:1::9', '2001:db8:2::/48'],
  f: ['10.0.0.1-10.0.0.6', '10.1.0.0/16'],
  g: ['"eth0" . 2001:db8:0:0:1:0:0:1'],
  h: ['::/0 . 2001:db8::/32'],
};

describe('element text in one spelling', () => {
  const intervals = parseNftTable(fixture('nft-intervals.json'));

  it('reads interval elements as nft 1.0.6 lists them: aligned ranges as prefixes, one address bare', () => {
    expect(intervals.sets.get('a')!.elements).toEqual(['tcp . 1 . 0.0.0.0/0', 'tcp . 2 . 10.0.0.1-10.0.0.6', 'tcp . 3 . 10.0.0.8', 'tcp . 4 . 10.0.0.0/8']);
    expect(intervals.sets.get('b')!.elements).toEqual(['tcp . 1 . ::/0', 'tcp . 2 . 2001:db8::1', 'tcp . 3 . 2001:db8::5-2001:db8::9', 'tcp . 4 . ::ffff:10.0.0.0/104']);
    expect(intervals.sets.get('h')!.elements).toEqual(['::/0 . 2001:db8::/32']);
  });

  it('says every element the way nft lists it, whichever way the script wrote it', () => {
    for (const [name, written] of Object.entries(INTERVAL_SCRIPT)) {
      expect(written.map(normalizeElement).sort(), name).toEqual([...intervals.sets.get(name)!.elements].sort());
    }
  });

  it('normalises each field on its own and leaves ports, protocols and port ranges alone', () => {
    expect(normalizeElement('198.18.3.4/32 . 198.18.3.4/32')).toBe('198.18.3.4 . 198.18.3.4');
    expect(normalizeElement('198.18.3.0/24')).toBe('198.18.3.0/24');
    expect(normalizeElement('2001:DB8:0::1/128 . 2001:0db8::/32')).toBe('2001:db8::1 . 2001:db8::/32');
    expect(normalizeElement('"eth0" . tcp . 8080 . 0.0.0.0-255.255.255.255')).toBe('eth0 . tcp . 8080 . 0.0.0.0/0');
    expect(normalizeElement('tcp . 8080 . ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe('tcp . 8080 . ::/0');
    expect(normalizeElement('198.18.1.2 . tcp . 5000-5003')).toBe('198.18.1.2 . tcp . 5000-5003');
    expect(normalizeElement('::1 . tcp . 5433 : 2001:db8:1::2 . 5432')).toBe('::1 . tcp . 5433 : 2001:db8:1::2 . 5432');
    expect(normalizeElement('10.0.0.6-10.0.0.1')).toBe('10.0.0.6-10.0.0.1');
    for (const written of Object.values(INTERVAL_SCRIPT).flat()) {
      expect(normalizeElement(normalizeElement(written)), written).toBe(normalizeElement(written));
    }
  });

  it('tells 198.18.1.2 from 198.18.1.20', () => {
    expect(elementTokens('tcp . 8080 : 198.18.1.20 . 80')).toEqual(['tcp', '8080', '198.18.1.20', '80']);
    expect(elementTokens('tcp . 8080 : 198.18.1.20 . 80')).not.toContain('198.18.1.2');
  });
});
