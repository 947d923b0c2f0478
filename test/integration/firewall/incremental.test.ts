import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../../src/dataplane/dockerUser.js';
import { runCommand } from '../../../src/dataplane/exec.js';
import type { FirewallEndpoint, FirewallModel, ResolvedExposure } from '../../../src/dataplane/model.js';
import { NftFirewall } from '../../../src/dataplane/nft/apply.js';

/**
 * The incremental apply against the real nft and kernel: after every change, the table that only
 * ever received deltas holds exactly what a table rebuilt from scratch for the same model holds.
 * Everything happens in a network namespace of its own; no packet is sent.
 */

const NS = 'pnfw-incr';
const run: CommandRunner = (program, args, input) => runCommand('ip', ['netns', 'exec', NS, program, ...args], input);
const incremental = new NftFirewall({ run, dockerUser: false, table: 'portnet_inc' });
const reference = new NftFirewall({ run, dockerUser: false, table: 'portnet_ref', incremental: false });

const net = (index: number, pools: string[], icc = true) => ({ id: `${index}`.repeat(64), index, pools, pools6: [] as string[], icc, masquerade: index % 2 === 1 });
const N1 = net(1, ['198.18.1.0/24']);
const N2 = net(2, ['198.18.2.0/24', '198.18.3.0/25'], false);

const x = (proto: ResolvedExposure['proto'], host: number, container: number, hostIp?: string, length = 1): ResolvedExposure => ({
  proto,
  hostPort: host,
  hostPortEnd: host + length - 1,
  containerPort: container,
  containerPortEnd: container + length - 1,
  ...(hostIp ? { hostIp } : {}),
});
const ep = (n: number, network: { id: string; index: number }, address: string, exposures: ResolvedExposure[] = []): FirewallEndpoint => ({
  id: `${n}`.padStart(64, 'c'),
  networkId: network.id,
  hostIf: `pn${n.toString(16).padStart(11, '0')}`,
  address,
  exposures,
});

/** Element lists of every set and map of `table`, sorted, as nft prints them. */
async function contents(table: string): Promise<Record<string, string[]>> {
  const doc = JSON.parse(await run('nft', ['-j', 'list', 'table', 'inet', table])) as { nftables: Record<string, { name: string; elem?: unknown[] }>[] };
  const out: Record<string, string[]> = {};
  for (const item of doc.nftables) {
    const s = item.set ?? item.map;
    if (s) out[s.name] = (s.elem ?? []).map((e) => JSON.stringify(e)).sort();
  }
  return out;
}

async function applyBoth(model: FirewallModel): Promise<void> {
  await incremental.apply(model);
  await reference.apply(model);
  expect(await contents('portnet_inc')).toEqual(await contents('portnet_ref'));
}

beforeAll(async () => {
  await runCommand('ip', ['netns', 'del', NS]).catch(() => undefined);
  await runCommand('ip', ['netns', 'add', NS]);
});

afterAll(async () => {
  await runCommand('ip', ['netns', 'del', NS]).catch(() => undefined);
});

describe.sequential('incremental apply on a real kernel', () => {
  const a = ep(1, N1, '198.18.1.2', [x('tcp', 8080, 80), x('udp', 5353, 53)]);
  const b = ep(2, N1, '198.18.1.3');
  const c = ep(3, N2, '198.18.3.10', [x('tcp', 7000, 5000, undefined, 4), x('tcp', 5432, 5432, '127.0.0.1'), x('tcp', 9090, 90, '198.51.100.1')]);

  it('starts with a full replace, then adds and removes endpoints as deltas', async () => {
    await applyBoth({ networks: [N1], endpoints: [a] });
    expect(incremental.lastApply.kind).toBe('replace');
    await applyBoth({ networks: [N1], endpoints: [a, b] });
    expect(incremental.lastApply).toMatchObject({ kind: 'delta', deletes: 0 });
    await applyBoth({ networks: [N1, N2], endpoints: [a, b, c] });
    expect(incremental.lastApply.kind).toBe('delta');
    await applyBoth({ networks: [N1, N2], endpoints: [b, c] });
    expect(incremental.lastApply).toMatchObject({ kind: 'delta', adds: 0 });
  });

  it('moves a host port to another endpoint in one transaction (map key to a new value)', async () => {
    const b2 = { ...b, exposures: [x('tcp', 8080, 81)] };
    await applyBoth({ networks: [N1, N2], endpoints: [b2, c] });
    expect(incremental.lastApply.kind).toBe('delta');
    await applyBoth({ networks: [N1, N2], endpoints: [{ ...b2, exposures: [] }, { ...a, exposures: [x('tcp', 8080, 82)] }, c] });
    expect(incremental.lastApply.kind).toBe('delta');
  });

  it('changes port ranges, bound and loopback exposures', async () => {
    const c2 = { ...c, exposures: [x('tcp', 7001, 5001, undefined, 6), x('udp', 5432, 5432, '127.0.0.1'), x('tcp', 9090, 91, '198.51.100.2')] };
    await applyBoth({ networks: [N1, N2], endpoints: [b, c2] });
    expect(incremental.lastApply.kind).toBe('delta');
  });

  it('changes networks (pools, icc, masquerade) as deltas too', async () => {
    await applyBoth({ networks: [N1, { ...N2, icc: true, masquerade: true }], endpoints: [b, c] });
    expect(incremental.lastApply.kind).toBe('delta');
    await applyBoth({ networks: [N1], endpoints: [b] });
    expect(incremental.lastApply.kind).toBe('delta');
  });

  it('allowlists, interface bindings and IPv6 change as deltas too (interval sets included)', async () => {
    const D = { ...net(4, ['198.18.4.0/24']), pools6: ['2001:db8:4::/64'] };
    const d1 = { ...ep(41, D, '198.18.4.2', [x('tcp', 8080, 80), { ...x('udp', 5353, 53), sources: ['10.0.0.0/8', '2001:db8:ff::/48'] }]), address6: '2001:db8:4::2' };
    const d2 = ep(42, D, '198.18.4.3', [{ ...x('tcp', 8443, 443), hostIface: 'eth0', sources: ['192.0.2.0/24'] }, x('tcp', 8444, 444, '::1')]);
    await applyBoth({ networks: [N1, D], endpoints: [b, d1, d2] });
    expect(incremental.lastApply.kind).toBe('delta');
    // Widen one list, narrow another, move a v6 binding: deletes and adds in the pipapo sets.
    const d1b = { ...d1, exposures: [x('tcp', 8080, 80, '2001:db8::1'), { ...x('udp', 5353, 53), sources: ['10.0.0.0/9', '10.128.0.0/9', '198.51.100.7/32'] }] };
    const d2b = { ...d2, address6: '2001:db8:4::3', exposures: [{ ...x('tcp', 8443, 443), hostIface: 'eth1', sources: ['192.0.2.0/25', '2001:db8::/32'] }] };
    await applyBoth({ networks: [N1, D], endpoints: [b, d1b, d2b] });
    expect(incremental.lastApply.kind).toBe('delta');
    await applyBoth({ networks: [N1, D], endpoints: [b, d1] });
    expect(incremental.lastApply.kind).toBe('delta');
    await applyBoth({ networks: [N1], endpoints: [b] });
    expect(incremental.lastApply.kind).toBe('delta');
  });

  it('puts the table back whole when someone deleted it behind its back', async () => {
    await run('nft', ['delete', 'table', 'inet', 'portnet_inc']);
    await applyBoth({ networks: [N1], endpoints: [b, a] });
    expect(incremental.lastApply.kind).toBe('replace');
  });

  it('1,000 endpoints: one more is a delta of a few elements', async () => {
    const big = net(3, ['198.18.64.0/18']);
    const eps = Array.from({ length: 1000 }, (_, i) =>
      ep(100 + i, big, `198.18.${64 + Math.floor((i + 2) / 256)}.${(i + 2) % 256}`, [x('tcp', 20000 + i, 80)]),
    );
    await applyBoth({ networks: [N1, big], endpoints: eps });
    const extra = ep(5000, big, '198.18.100.1', [x('tcp', 30000, 80)]);
    await applyBoth({ networks: [N1, big], endpoints: [...eps, extra] });
    expect(incremental.lastApply).toEqual({ kind: 'delta', deletes: 0, adds: 5 });
    await applyBoth({ networks: [N1, big], endpoints: eps });
    expect(incremental.lastApply).toEqual({ kind: 'delta', deletes: 5, adds: 0 });
  });
});
