// Start-up repairs (reconcileKernel) and reconciliation with Docker for dual-stack networks, on the fake kernel.
import { describe, expect, it } from 'vitest';
import { parsePortnetRoute } from '../../../src/dataplane/links.js';
import { FakeDockerView } from '../../../src/docker/view.js';
import type { Plugin } from '../../../src/serve.js';
import type { EndpointRecord } from '../../../src/state/records.js';
import { Host, idOf, type Running } from './sim.js';

const NET = idOf('net6');
const V4 = '198.18.5.0/24';
const V6 = '2001:db8:5::/64';

/** Docker's calls for `docker run` on a dual-stack network (`v6: false`: an IPv4-only endpoint). */
async function runContainer(p: Plugin, n: number, v6 = true): Promise<string> {
  const ep = idOf(`ep${n}`);
  const { Address } = await p.ipam.requestAddress({ PoolID: V4, Address: '', Options: {} });
  const AddressIPv6 = v6 ? (await p.ipam.requestAddress({ PoolID: V6, Address: '', Options: {} })).Address : '';
  await p.driver.createEndpoint({ NetworkID: NET, EndpointID: ep, Interface: { Address, AddressIPv6, MacAddress: '' }, Options: {} });
  await p.driver.join({ NetworkID: NET, EndpointID: ep, SandboxKey: `/var/run/docker/netns/c${n}`, Options: {} });
  return ep;
}

/** A host with a dual-stack network and two containers on it, all healthy. */
async function dualStackHost(): Promise<{ host: Host; eps: EndpointRecord[] }> {
  const host = new Host();
  const { plugin: p } = await host.start();
  await p.ipam.requestPool({ AddressSpace: 'portnet-local', Pool: V4, SubPool: '', Options: {}, V6: false });
  await p.ipam.requestPool({ AddressSpace: 'portnet-local', Pool: V6, SubPool: '', Options: {}, V6: true });
  await p.driver.createNetwork({
    NetworkID: NET,
    Options: { 'com.docker.network.enable_ipv6': true, 'com.docker.network.generic': {} },
    IPv4Data: [{ Pool: V4, Gateway: '169.254.1.1/32' }],
    IPv6Data: [{ Pool: V6, Gateway: 'fe80::1/64' }],
  });
  const ids = [await runContainer(p, 1), await runContainer(p, 2)];
  return { host, eps: ids.map((id) => p.state.endpoint(id)!) };
}

const kinds = (run: Running) => run.kernelRepairs.map((r) => r.kind).sort();

/** Links and routes the state implies, v4 and v6, and nothing else. */
function expectKernelMatches(host: Host, run: Running): void {
  const eps = run.plugin.state.endpoints();
  expect(new Set(host.links.links.keys())).toEqual(new Set(eps.map((e) => e.hostIf)));
  expect(new Map(host.links.endpointRoutes)).toEqual(
    new Map(eps.flatMap((e) => [[e.address, e.hostIf] as const, ...(e.address6 ? [[e.address6, e.hostIf] as const] : [])])),
  );
  expect(new Set(host.links.loopbackRoutes)).toEqual(new Set(eps.filter((e) => e.address6).map((e) => e.hostIf)));
  expect(new Set(host.links.poolRoutes)).toEqual(new Set([V4, V6]));
}

describe('reconcileKernel with IPv6', () => {
  it('changes nothing on a healthy dual-stack host', async () => {
    const { host } = await dualStackHost();
    const run = await host.start();
    expect(run.kernelRepairs).toEqual([]);
    expectKernelMatches(host, run);
  });

  it('after a reboot puts back both pool routes and IPv6 forwarding, and waits for Docker on the endpoints', async () => {
    const { host } = await dualStackHost();
    host.links.links.clear();
    host.links.endpointRoutes.clear();
    host.links.loopbackRoutes.clear();
    host.links.poolRoutes.clear();
    host.links.ipv6Forwarding = false;
    const run = await host.start();
    expect(kinds(run)).toEqual(['pool-route-missing', 'pool-route-missing', 'veth-lost', 'veth-lost']);
    expect(run.kernelRepairs.filter((r) => r.kind === 'pool-route-missing').map((r) => r.detail.pool)).toEqual([V4, V6]);
    expect(run.kernelRepairs.find((r) => r.kind === 'veth-lost')!.message).toMatch(/^the veth of 198\.18\.5\.\d+, 2001:db8:5::\d+ \(pn/);
    expect([...host.links.poolRoutes]).toEqual([V4, V6]);
    expect(host.links.ipv6Forwarding).toBe(true);
  });

  it("puts back an endpoint's missing /128 route and local ::1 route", async () => {
    const { host, eps } = await dualStackHost();
    const [a, b] = eps;
    host.links.endpointRoutes.delete(a!.address6!);
    host.links.loopbackRoutes.delete(b!.hostIf);
    const run = await host.start();
    expect(kinds(run)).toEqual(['endpoint-route-missing', 'endpoint-route-missing']);
    expect(run.kernelRepairs.map((r) => r.message).sort()).toEqual([
      `put back the /128 route of ${a!.address6} to ${a!.hostIf}`,
      `put back the local ::1 route to ${b!.hostIf}`,
    ]);
    expectKernelMatches(host, run);
  });

  it('removes an IPv6 pool route no network has and a /128 route no endpoint has', async () => {
    const { host } = await dualStackHost();
    await host.links.addPoolRoute('2001:db8:99::/64');
    const [owned] = host.links.links.keys();
    host.links.endpointRoutes.set('2001:db8:5::99', owned!);
    const run = await host.start();
    expect(kinds(run)).toEqual(['orphan-endpoint-route', 'orphan-pool-route']);
    expectKernelMatches(host, run);
  });

  it('takes IPv6 away from the link of an IPv4-only endpoint', async () => {
    const { host } = await dualStackHost();
    const p = (await host.start()).plugin;
    const hostIf = p.state.endpoint(await runContainer(p, 3, false))!.hostIf;
    host.links.loopbackRoutes.add(hostIf);
    const run = await host.start();
    expect(kinds(run)).toEqual(['orphan-endpoint-route']);
    expect(run.kernelRepairs[0]!.message).toBe(`removed the local ::1 route of ${hostIf}: its endpoint has no IPv6 address`);
    expectKernelMatches(host, run);
  });

  it('re-creates the veth of a running dual-stack container with its IPv6 side', async () => {
    const { host, eps } = await dualStackHost();
    const rec = eps[0]!;
    host.links.addSandbox(rec.sandboxKey!);
    await host.links.deleteEndpointLink(rec.hostIf);
    const run = await host.start();
    expect(kinds(run)).toEqual(['veth-restored']);
    expect(host.links.restored).toEqual([
      {
        spec: expect.objectContaining({ hostIf: rec.hostIf, address6: rec.address6 }),
        side: { sandbox: rec.sandboxKey, prefix: 32, gateway: '169.254.1.1', prefix6: 128, gateway6: 'fe80::1' },
        name: 'eth0',
      },
    ]);
    expectKernelMatches(host, run);
  });

  it('is itself safe to cut: a crash at any side effect of the IPv6 repairs, then a clean start, ends consistent', async () => {
    const breakIt = async (host: Host, eps: EndpointRecord[]) => {
      host.links.poolRoutes.delete(V6);
      host.links.loopbackRoutes.delete(eps[0]!.hostIf);
      host.links.endpointRoutes.delete(eps[1]!.address6!);
      await host.links.addPoolRoute('2001:db8:99::/64');
      host.links.ipv6Forwarding = false;
    };
    const probe = await dualStackHost();
    await breakIt(probe.host, probe.eps);
    const total = (await probe.host.start()).fuse.count;
    expect(total).toBeGreaterThanOrEqual(6);
    for (let at = 0; at < 2 * total; at++) {
      const { host, eps } = await dualStackHost();
      await breakIt(host, eps);
      await expect(host.start(Number.POSITIVE_INFINITY, at), `crash point ${at}`).rejects.toThrow(/died/);
      const run = await host.start();
      expectKernelMatches(host, run);
      expect(host.links.ipv6Forwarding, `crash point ${at}`).toBe(true);
    }
  });
});

describe('reconcileWithDocker with IPv6', () => {
  it("releases both addresses of an endpoint Docker forgot; keeps the IPv6 address another driver's endpoint holds", async () => {
    const { host, eps } = await dualStackHost();
    const run = await host.start();
    const p = run.plugin;
    // portnet as the IPAM only of a dual-stack network of another driver, with a container on it.
    await p.ipam.requestPool({ AddressSpace: '', Pool: '2001:db8:7::/64', SubPool: '', Options: {}, V6: true });
    await p.ipam.requestAddress({ PoolID: '2001:db8:7::/64', Address: '2001:db8:7::5', Options: {} });
    await p.ipam.requestAddress({ PoolID: '2001:db8:7::/64', Address: '2001:db8:7::6', Options: {} });
    const restarted = await host.start();
    const [kept, gone] = eps;
    const view = new FakeDockerView();
    view.nets = [
      { id: NET, name: 'n6', driver: 'portnet', subnets: [V4, V6], reserved: [], endpoints: [{ id: kept!.id, containerId: 'c1', ipv4: kept!.address }] },
      // Docker holds ::5 for a container; ::6 is held by nothing Docker knows (its container is gone).
      { id: idOf('other'), name: 'o6', driver: 'macvlan', subnets: ['2001:db8:7::/64'], reserved: [], endpoints: [{ id: idOf('x'), containerId: 'c9', ipv6: '2001:db8:7::5' }] },
    ];
    const repairs = await host.reconcileDocker(restarted, view);
    expect(repairs!.map((r) => r.kind)).toEqual(['endpoint-unknown-to-docker', 'address-unknown-to-docker', 'address-unknown-to-docker', 'address-unknown-to-docker']);
    expect(repairs![3]!.message).toContain('2001:db8:7::6');
    expect(repairs![0]!.message).toContain(`${gone!.address}, ${gone!.address6}, ${gone!.hostIf}`);
    const state = restarted.plugin.state;
    expect(state.allocations(V4).map((a) => a.address)).toEqual([kept!.address]);
    expect(state.allocations(V6).map((a) => a.address)).toEqual([kept!.address6]);
    expect(state.allocations('2001:db8:7::/64').map((a) => a.address)).toEqual(['2001:db8:7::5']);
    expect(host.links.endpointRoutes.has(gone!.address6!)).toBe(false);
  });
});

describe('parsePortnetRoute', () => {
  it.each([
    // As `ip -4|-6 route show [table local] proto 91` printed them on this kernel.
    ['198.18.200.1 dev pnca673a173af scope link', { kind: 'endpoint', address: '198.18.200.1', dev: 'pnca673a173af' }],
    ['unreachable 198.18.200.0/24 metric 3999', { kind: 'pool', cidr: '198.18.200.0/24' }],
    ['2001:db8:200::1 dev pnca673a173af metric 1024 pref medium', { kind: 'endpoint', address: '2001:db8:200::1', dev: 'pnca673a173af' }],
    ['unreachable 2001:db8:200::/64 dev lo metric 3999 pref medium', { kind: 'pool', cidr: '2001:db8:200::/64' }],
    ['local ::1 dev pnca673a173af metric 1024 pref medium', { kind: 'loopback', dev: 'pnca673a173af' }],
    ['default via fe80::1 dev eth0 metric 1024 pref medium', { kind: 'other' }],
    ['local 2001:db8::1 dev eth0 metric 0 pref medium', { kind: 'other' }],
  ])('%s', (line, want) => {
    expect(parsePortnetRoute(line)).toMatchObject({ ...want, text: line });
  });
});
