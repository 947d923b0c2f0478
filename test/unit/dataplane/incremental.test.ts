import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FirewallEndpoint, FirewallModel, FirewallNetwork, ResolvedExposure } from '../../../src/dataplane/model.js';
import { elementId, planElements } from '../../../src/dataplane/nft/elements.js';
import { TableContents } from '../../../src/dataplane/nft/incremental.js';
import { planRuleset } from '../../../src/dataplane/nft/plan.js';
import { endpoint, network, port, tcp, udp } from './fixtures.js';

/** What the full ruleset of `model` puts in the sets and maps, as elementIds. */
function fullElements(model: FirewallModel): string[] {
  return [...planElements(planRuleset(model)).values()].flat().map(elementId).sort();
}

function errorOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * Drives TableContents through a sequence of models as NftFirewall does, checking after each step
 * that the delta takes the table exactly to the full ruleset's elements, touches nothing else, and
 * that an invalid model fails with planRuleset's own error and changes nothing.
 */
function drive(models: FirewallModel[]): { fast: number; slow: number; refused: number } {
  let contents: TableContents | undefined;
  let table = new Set<string>();
  const paths = { fast: 0, slow: 0, refused: 0 };
  for (const model of models) {
    const expectedError = errorOf(() => planRuleset(model));
    if (!contents) {
      if (expectedError) continue;
      contents = TableContents.fromPlan(planRuleset(model), model);
      table = new Set(fullElements(model));
      expect(contents.elementIds()).toEqual([...table].sort());
      continue;
    }
    const before = contents.elementIds();
    const current = contents;
    const error = errorOf(() => current.transition(model));
    if (expectedError !== undefined) {
      expect(error).toBe(expectedError);
      expect(contents.elementIds()).toEqual(before);
      paths.refused++;
      continue;
    }
    expect(error).toBeUndefined();
    const t = contents.transition(model);
    paths[t.full ? 'slow' : 'fast']++;
    for (const e of t.delta.deletes) {
      expect(table.has(elementId(e)), `delete of ${elementId(e)}, which the table does not hold`).toBe(true);
      table.delete(elementId(e));
    }
    for (const e of t.delta.adds) {
      expect(table.has(elementId(e)), `add of ${elementId(e)}, which the table holds already`).toBe(false);
      table.add(elementId(e));
    }
    expect([...table].sort()).toEqual(fullElements(model));
    t.commit();
    expect(contents.elementIds()).toEqual([...table].sort());
  }
  return paths;
}

const net1 = network(1);
const net2 = network(2, { icc: false, masquerade: false });

describe('TableContents', () => {
  it('adds and removes one endpoint as a handful of elements, whatever else is there', () => {
    const others = Array.from({ length: 200 }, (_, i) =>
      endpoint(net1, i + 10, [tcp(20000 + i, 80)]),
    ).map((e, i) => ({ ...e, hostIf: `pn${(0x100 + i).toString(16).padStart(11, '0')}`, id: `${i}`.padStart(64, 'e') }));
    const base: FirewallModel = { networks: [net1], endpoints: others };
    const contents = TableContents.fromPlan(planRuleset(base), base);
    const extra = endpoint(net1, 1, [tcp(8080, 80), udp(5353, 53)]);
    const grown = contents.transition({ networks: [net1], endpoints: [...others, extra] });
    expect(grown.full).toBe(false);
    expect(grown.delta.deletes).toEqual([]);
    expect(grown.delta.adds.map((e) => e.set).sort()).toEqual(
      ['dnat_any', 'dnat_any', 'endpoint_sources', 'exposed_direct', 'exposed_direct', 'exposed_dnat', 'exposed_dnat', 'hairpin_self'].sort(),
    );
    grown.commit();
    const shrunk = contents.transition(base);
    expect(shrunk.delta.adds).toEqual([]);
    expect(shrunk.delta.deletes).toHaveLength(8);
    shrunk.commit();
    expect(contents.transition(base).delta).toEqual({ deletes: [], adds: [] });
  });

  it('moves a host port from one endpoint to another as a delete and an add of the map element', () => {
    const a = endpoint(net1, 1, [tcp(8080, 80)]);
    const b = endpoint(net1, 2);
    const before: FirewallModel = { networks: [net1], endpoints: [a, b] };
    const after: FirewallModel = { networks: [net1], endpoints: [{ ...a, exposures: [] }, { ...b, exposures: [tcp(8080, 81)] }] };
    const contents = TableContents.fromPlan(planRuleset(before), before);
    const t = contents.transition(after);
    expect(t.full).toBe(false);
    expect(t.delta.deletes.filter((e) => e.set === 'dnat_any')).toEqual([{ set: 'dnat_any', key: 'tcp . 8080', value: '198.18.1.2 . 80' }]);
    expect(t.delta.adds.filter((e) => e.set === 'dnat_any')).toEqual([{ set: 'dnat_any', key: 'tcp . 8080', value: '198.18.1.3 . 81' }]);
  });

  it('takes the slow path for network changes and for conflicts, with planRuleset errors', () => {
    const a = endpoint(net1, 1, [tcp(8080, 80)]);
    const m1: FirewallModel = { networks: [net1], endpoints: [a] };
    expect(drive([m1, { networks: [net1, net2], endpoints: [a] }])).toEqual({ fast: 0, slow: 1, refused: 0 });
    const clash = endpoint(net1, 2, [tcp(8080, 90)]);
    expect(drive([m1, { networks: [net1], endpoints: [a, clash] }, m1])).toEqual({ fast: 1, slow: 0, refused: 1 });
  });

  it('agrees with the full ruleset over random sequences of models (valid or not)', () => {
    // A small universe so that sequences revisit, move and clash ports and addresses often.
    const networks: FirewallNetwork[] = [
      net1,
      net2,
      network(3, { pools: ['198.18.3.0/24', '198.18.4.0/25'], pools6: ['2001:db8:3::/64', '2001:db8:4::/64'] }),
    ];
    const hostIps = [undefined, '0.0.0.0', '::', '198.51.100.1', '198.51.100.2', '127.0.0.1', '::1', '2001:db8::1'];
    const ifaces = [undefined, undefined, 'eth0', 'eth1'];
    const sourceLists = [undefined, undefined, ['10.0.0.0/8'], ['10.0.0.0/8', '10.1.0.0/16', '2001:db8:ff::/48'], ['0.0.0.0/0', '::/0']];
    const exposure: fc.Arbitrary<ResolvedExposure> = fc
      .record({
        proto: fc.constantFrom('tcp', 'udp', 'sctp') as fc.Arbitrary<ResolvedExposure['proto']>,
        host: fc.integer({ min: 8000, max: 8006 }),
        container: fc.integer({ min: 80, max: 84 }),
        length: fc.integer({ min: 1, max: 3 }),
        hostIp: fc.constantFrom(...hostIps),
        iface: fc.constantFrom(...ifaces),
        sources: fc.constantFrom(...sourceLists),
      })
      .map((x) => {
        const base = port(x.proto, x.host, x.host + x.length - 1, x.container, x.container + x.length - 1, x.iface ? undefined : x.hostIp);
        return { ...base, ...(x.iface ? { hostIface: x.iface } : {}), ...(x.sources ? { sources: x.sources } : {}) };
      });
    const ep: fc.Arbitrary<FirewallEndpoint> = fc
      .record({
        slot: fc.integer({ min: 1, max: 6 }),
        net: fc.integer({ min: 0, max: 2 }),
        addressSlot: fc.integer({ min: 1, max: 6 }),
        exposures: fc.array(exposure, { maxLength: 3 }),
        badAddress: fc.boolean(),
        v6: fc.boolean(),
      })
      .map((r) => {
        const net = networks[r.net]!;
        const e = endpoint(net, r.slot, r.exposures);
        // Addresses independent of the slot, so that two endpoints can want the same one.
        const address = r.badAddress && r.addressSlot === 6 ? '198.18.9.9' : `198.18.${net.index}.${r.addressSlot + 1}`;
        // On the IPv4-only networks an IPv6 address is invalid: that exercises the refusals too.
        return { ...e, address, ...(r.v6 ? { address6: `2001:db8:3::${r.addressSlot + 1}` } : {}) };
      });
    const model: fc.Arbitrary<FirewallModel> = fc.record({
      networks: fc.subarray(networks, { minLength: 1 }),
      endpoints: fc.array(ep, { maxLength: 5 }),
    });
    // Mostly small edits of the previous model, as the driver makes them.
    const sequence = fc.tuple(model, fc.array(fc.tuple(fc.nat(4), ep, model), { minLength: 1, maxLength: 12 })).map(([first, steps]) => {
      const out = [first];
      for (const [op, e, other] of steps) {
        const prev = out[out.length - 1]!;
        const eps = prev.endpoints;
        if (op === 0) out.push({ ...prev, endpoints: [...eps, e] });
        else if (op === 1 && eps.length > 0) out.push({ ...prev, endpoints: eps.slice(1) });
        else if (op === 2 && eps.length > 0) out.push({ ...prev, endpoints: [{ ...e, id: eps[0]!.id }, ...eps.slice(1)] });
        else if (op === 3) out.push({ ...prev, endpoints: [...eps].reverse() });
        else out.push(other);
      }
      return out;
    });
    const total = { fast: 0, slow: 0, refused: 0 };
    fc.assert(
      fc.property(sequence, (models) => {
        const paths = drive(models);
        for (const k of ['fast', 'slow', 'refused'] as const) total[k] += paths[k];
      }),
      { numRuns: 400 },
    );
    // The sequences exercise both paths and invalid models, not just one of them.
    expect(total.fast).toBeGreaterThan(200);
    expect(total.slow).toBeGreaterThan(50);
    expect(total.refused).toBeGreaterThan(50);
  });
});
