// fixtures/nft-table.json is `nft -j list table inet portnet` (nft 1.0.6) after `nft -f` of the ruleset
// rendered for fixtures/nft-model.json, captured in a scratch network namespace.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FirewallModel } from '../../../src/dataplane/model.js';
import { elementTokens, expectedChains, expectedElements, formatStatement, normalizeElement, parseNftTable } from '../../../src/cli/nftJson.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const model = JSON.parse(fixture('nft-model.json')) as FirewallModel;
const live = parseNftTable(fixture('nft-table.json'));

describe('nft -j, made readable', () => {
  it('reads every set and map with its elements in nft syntax', () => {
    expect(live.name).toBe('portnet');
    expect(live.sets.get('pools')?.elements).toEqual(['198.18.1.0/24', '198.18.2.0/24', '198.18.3.4']);
    expect(live.sets.get('endpoint_sources')?.elements).toContain('pn11bbbbbbbbb . 198.18.1.2');
    expect(live.sets.get('icc_pairs')?.elements).toEqual(['198.18.1.0/24 . 198.18.1.0/24']);
    expect(live.sets.get('dnat_any')).toEqual({
      name: 'dnat_any',
      kind: 'map',
      elements: ['tcp . 8080 : 198.18.1.2 . 80', 'sctp . 8081 : 198.18.2.2 . 81', 'udp . 5353 : 198.18.1.2 . 53'],
    });
    expect(live.sets.get('dnat_bound')?.elements).toEqual(['127.0.0.1 . tcp . 5432 : 198.18.1.2 . 5432', '198.51.100.1 . tcp . 9090 : 198.18.1.2 . 90']);
  });

  it('reads the rules as nft prints them, with the sets they use', () => {
    const raw = live.chains.get('prerouting_raw')!.rules;
    expect(raw[0]).toEqual({
      chain: 'prerouting_raw',
      text: 'iifname "pn*" iifname . ip saddr != @endpoint_sources counter packets 0 bytes 0 drop',
      uses: ['endpoint_sources'],
    });
    expect(live.chains.get('exposures')!.rules.map((r) => r.text)).toEqual([
      'dnat ip to ip daddr . meta l4proto . th dport map @dnat_bound',
      'dnat ip to meta l4proto . th dport map @dnat_any',
    ]);
    expect(live.chains.get('to_endpoint')!.rules[0]!.text).toBe('ct state established,related accept');
    expect(live.chains.get('prerouting_nat')!.rules[1]!.text).toBe('fib daddr type local jump exposures');
    expect(formatStatement({ frobnicate: { x: 1 } })).toBe('{"frobnicate":{"x":1}}');
  });

  it('expects exactly what the kernel holds for the model the ruleset was rendered from', () => {
    const expected = expectedElements(model);
    expect([...expected.keys()].sort()).toEqual([...live.sets.keys()].sort());
    for (const [name, elements] of expected) expect([...elements].sort(), name).toEqual([...live.sets.get(name)!.elements].sort());
  });

  it('knows every chain of the ruleset and how many rules it has', () => {
    const chains = expectedChains(model);
    expect([...chains.keys()].sort()).toEqual([...live.chains.keys()].sort());
    for (const n of chains.values()) expect(n).toBeGreaterThan(0);
  });

  it('compares /32 as nft prints it, and tells 198.18.1.2 from 198.18.1.20', () => {
    expect(normalizeElement('198.18.3.4/32 . 198.18.3.4/32')).toBe('198.18.3.4 . 198.18.3.4');
    expect(normalizeElement('198.18.3.0/24')).toBe('198.18.3.0/24');
    expect(elementTokens('tcp . 8080 : 198.18.1.20 . 80')).toEqual(['tcp', '8080', '198.18.1.20', '80']);
    expect(elementTokens('tcp . 8080 : 198.18.1.20 . 80')).not.toContain('198.18.1.2');
  });
});
