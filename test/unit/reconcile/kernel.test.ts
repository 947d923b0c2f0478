// Start-up repairs of the kernel (reconcileKernel) on the fake kernel, one fault per test.
import { describe, expect, it } from 'vitest';
import { buildFirewallModel } from '../../../src/network/firewallModel.js';
import { DockerSim, dockerViewOf, expectConsistent, Host, idOf, type Running } from './sim.js';

const NET = idOf('net1');

/** A host where Docker made a network and three containers (one of them with -p), all healthy. */
async function healthyHost(): Promise<{ host: Host; sim: DockerSim }> {
  const host = new Host();
  const sim = new DockerSim(host, 'retry', Number.POSITIVE_INFINITY);
  await sim.boot();
  await sim.createNetwork('198.18.5.0/24');
  await sim.runContainer(NET, '8080:80');
  await sim.runContainer(NET, '8081:80');
  await sim.runContainer(NET, '8082:80');
  expect(sim.failures).toEqual([]);
  return { host, sim };
}

const kinds = (run: Running) => run.kernelRepairs.map((r) => r.kind).sort();

describe('reconcileKernel at start-up', () => {
  it('changes nothing and reports nothing on a healthy host', async () => {
    const { host, sim } = await healthyHost();
    const applied = host.firewall.applied.length;
    const run = await host.start();
    expect(run.kernelRepairs).toEqual([]);
    expectConsistent(host, run.plugin, sim.belief);
    // The table is replaced once, with the very same model.
    expect(host.firewall.applied.length).toBe(applied + 1);
    expect(host.firewall.applied.at(-1)).toEqual(host.firewall.applied.at(-2));
  });

  it("puts back portnet's nft table after it was deleted", async () => {
    const { host, sim } = await healthyHost();
    await host.firewall.remove();
    const run = await host.start();
    expect(kinds(run)).toEqual(['firewall-missing']);
    expect(host.firewall.model).toEqual(buildFirewallModel(run.plugin.state.networks(), run.plugin.state.endpoints()));
    expect(host.firewall.model!.endpoints).toHaveLength(3);
    expectConsistent(host, run.plugin, sim.belief);
  });

  it('after a reboot (no links, routes, rules or namespaces) puts back pool routes and rules, and waits for Docker on the endpoints', async () => {
    const { host, sim } = await healthyHost();
    host.links.links.clear();
    host.links.endpointRoutes.clear();
    host.links.poolRoutes.clear();
    await host.firewall.remove();
    const run = await host.start();
    expect(kinds(run)).toEqual(['firewall-missing', 'pool-route-missing', 'veth-lost', 'veth-lost', 'veth-lost']);
    expect(run.kernelRepairs.filter((r) => r.kind === 'veth-lost').every((r) => !r.repaired)).toBe(true);
    expect([...host.links.poolRoutes]).toEqual(['198.18.5.0/24']);
    // Docker restarted its containers with new endpoints; the old ones are gone from its store.
    sim.belief.endpoints.clear();
    const repairs = await host.reconcileDocker(run, dockerViewOf(sim.belief));
    expect(repairs!.map((r) => r.kind)).toEqual([...Array(3).fill('endpoint-unknown-to-docker'), ...Array(3).fill('address-unknown-to-docker')]);
    expectConsistent(host, run.plugin, sim.belief);
  });

  it('removes pn links, /32 routes and pool routes that no endpoint or network owns', async () => {
    const { host, sim } = await healthyHost();
    await host.links.createEndpointLink({ hostIf: 'pn0123456789a', peerIf: 'pc0123456789a', address: '198.18.5.200', mtu: 1500 });
    await host.links.addPoolRoute('198.18.99.0/24');
    const [owned] = host.links.links.keys();
    host.links.endpointRoutes.set('198.18.5.201', owned!); // a stale /32 through a link that is someone's
    const run = await host.start();
    expect(kinds(run)).toEqual(['orphan-endpoint-route', 'orphan-link', 'orphan-pool-route']);
    expect(run.kernelRepairs.find((r) => r.kind === 'orphan-link')!.message).toContain('pn0123456789a');
    expectConsistent(host, run.plugin, sim.belief);
  });

  it("puts back an endpoint's missing /32 route and the link's settings", async () => {
    const { host, sim } = await healthyHost();
    const [address, dev] = [...host.links.endpointRoutes][1]!;
    host.links.endpointRoutes.delete(address);
    const run = await host.start();
    expect(kinds(run)).toEqual(['endpoint-route-missing']);
    expect(host.links.repaired).toEqual([dev]);
    expectConsistent(host, run.plugin, sim.belief);
  });

  it('re-creates the veth of a running container whose pair was deleted, inside its namespace, with the next free eth name', async () => {
    const { host, sim } = await healthyHost();
    const [ep] = [...sim.belief.endpoints.values()];
    const sandbox = `/var/run/docker/netns/${ep!.container}`;
    host.links.addSandbox(sandbox);
    host.links.sandboxes.get(sandbox)!.set('eth0', 'elsewhere'); // another network's interface
    const record = (await host.start()).plugin.state.endpoints().find((e) => e.address === ep!.address)!;
    await host.links.deleteEndpointLink(record.hostIf);
    const run = await host.start();
    expect(kinds(run)).toEqual(['veth-restored']);
    expect(run.kernelRepairs[0]!.detail).toMatchObject({ link: record.hostIf, inside: 'eth1', sandbox });
    expect(host.links.sandboxes.get(sandbox)!.get('eth1')).toBe(record.hostIf);
    expectConsistent(host, run.plugin, sim.belief);
  });

  it('keeps the link of an endpoint whose Join was cut before its commit (Docker resends Join)', async () => {
    const { host, sim } = await healthyHost();
    // The process died after Join made the link and before the commit (joined is still false).
    const run1 = await host.start();
    const p = run1.plugin;
    const before = host.links.links.size;
    const ep = idOf('late');
    await p.ipam.requestAddress({ PoolID: '198.18.5.0/24', Address: '198.18.5.90', Options: {} });
    await p.driver.createEndpoint({ NetworkID: NET, EndpointID: ep, Interface: { Address: '198.18.5.90/32', AddressIPv6: '', MacAddress: '' }, Options: {} });
    const rec = p.state.endpoint(ep)!;
    await host.links.createEndpointLink({ hostIf: rec.hostIf, peerIf: rec.peerIf, address: rec.address, mtu: 1500 });
    const run2 = await host.start();
    expect(run2.kernelRepairs).toEqual([]);
    expect(host.links.links.size).toBe(before + 1);
    await run2.plugin.driver.join({ NetworkID: NET, EndpointID: ep, SandboxKey: '/var/run/docker/netns/late', Options: {} });
    sim.belief.endpoints.set(ep, { networkId: NET, address: '198.18.5.90', container: 'late' });
    expectConsistent(host, run2.plugin, sim.belief);
  });

  it('is itself safe to cut: a crash at any side effect of the repairs, then a clean start, ends consistent', async () => {
    const { host: probe } = await healthyHost();
    await breakEverything(probe);
    const counting = await probe.start();
    const total = counting.fuse.count;
    expect(total).toBe(5); // pool route, orphan pool route, orphan link, /32 route, rules
    for (let at = 0; at < 2 * total; at++) {
      const { host, sim } = await healthyHost();
      await breakEverything(host);
      await expect(host.start(Number.POSITIVE_INFINITY, at), `crash point ${at}`).rejects.toThrow(/died/);
      const run = await host.start();
      expectConsistent(host, run.plugin, sim.belief);
    }
  });
});

/** Every kind of damage at once: rules gone, a pool route gone, an orphan link and route, a /32 route gone. */
async function breakEverything(host: Host): Promise<void> {
  await host.firewall.remove();
  await host.links.createEndpointLink({ hostIf: 'pn0123456789a', peerIf: 'pc0123456789a', address: '198.18.5.200', mtu: 1500 });
  await host.links.addPoolRoute('198.18.99.0/24');
  host.links.poolRoutes.delete('198.18.5.0/24');
  const [address] = [...host.links.endpointRoutes.keys()];
  host.links.endpointRoutes.delete(address!);
}
