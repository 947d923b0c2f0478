// Reconciliation with Docker (reconcileWithDocker) on fakes: what Docker forgot is released, what
// it knows or may still be making is kept, and Docker is read outside the plugin's lock.
import { describe, expect, it } from 'vitest';
import { FakeDockerView, fromInspect } from '../../../src/docker/view.js';
import { reconcileWithDocker, snapshotState } from '../../../src/reconcile/docker.js';
import { DockerSim, dockerViewOf, expectConsistent, Host, idOf, silent } from './sim.js';

const NET = idOf('net1');

async function hostWithContainers(n: number) {
  const host = new Host();
  const sim = new DockerSim(host, 'retry', Number.POSITIVE_INFINITY);
  await sim.boot();
  await sim.createNetwork('198.18.5.0/24');
  for (let i = 0; i < n; i++) await sim.runContainer(NET, `${8080 + i}:80`);
  expect(sim.failures).toEqual([]);
  // A restart: Docker talks to the new process from now on.
  sim.run = await host.start();
  return { host, sim, run: sim.run };
}

describe('reconcileWithDocker', () => {
  it('releases an endpoint Docker forgot (dockerd crashed, DeleteEndpoint never came): rules, veth, record, address', async () => {
    const { host, sim, run } = await hostWithContainers(3);
    const [gone] = [...sim.belief.endpoints.keys()];
    const record = run.plugin.state.endpoint(gone!)!;
    sim.belief.endpoints.delete(gone!);
    const repairs = await host.reconcileDocker(run, dockerViewOf(sim.belief));
    expect(repairs!.map((r) => r.kind)).toEqual(['endpoint-unknown-to-docker', 'address-unknown-to-docker']);
    expect(repairs![0]!.message).toContain(record.address);
    expect(host.links.links.has(record.hostIf)).toBe(false);
    expect(host.firewall.model!.endpoints.map((e) => e.id)).not.toContain(gone);
    expectConsistent(host, run.plugin, sim.belief);
    // Its host port is free again.
    await sim.runContainer(NET, `${8080}:80`);
    expect(sim.failures).toEqual([]);
  });

  it('never judges what was made after start-up: a docker run between two calls is left alone', async () => {
    const { host, sim, run } = await hostWithContainers(1);
    const p = run.plugin;
    // A docker run in progress: address and endpoint made, Docker has not stored the endpoint yet.
    const { Address } = await p.ipam.requestAddress({ PoolID: '198.18.5.0/24', Address: '', Options: {} });
    const ep = idOf('in-progress');
    await p.driver.createEndpoint({ NetworkID: NET, EndpointID: ep, Interface: { Address, AddressIPv6: '', MacAddress: '' }, Options: {} });
    const repairs = await host.reconcileDocker(run, dockerViewOf(sim.belief));
    expect(repairs).toEqual([]);
    expect(p.state.endpoint(ep)).toBeDefined();
    expect(p.state.allocations('198.18.5.0/24').map((a) => a.address)).toContain(Address.split('/')[0]);
  });

  it('releases addresses and pools no Docker network holds, and keeps gateways, aux addresses and endpoints of IPAM-only networks', async () => {
    const { host, sim, run } = await hostWithContainers(1);
    const p = run.plugin;
    // portnet as the IPAM of a network with another driver: Docker's endpoints there are not portnet's.
    await p.ipam.requestPool({ AddressSpace: '', Pool: '198.18.7.0/24', SubPool: '', Options: {}, V6: false });
    for (const a of ['198.18.7.1', '198.18.7.2', '198.18.7.3', '198.18.7.4']) await p.ipam.requestAddress({ PoolID: '198.18.7.0/24', Address: a, Options: {} });
    await p.ipam.requestPool({ AddressSpace: '', Pool: '198.18.8.0/24', SubPool: '', Options: {}, V6: false }); // a network create that never finished
    await p.ipam.requestAddress({ PoolID: '198.18.5.0/24', Address: '198.18.5.99', Options: {} }); // a RequestAddress answered into a dead connection
    const restarted = await host.start();
    const view = dockerViewOf(sim.belief);
    view.nets.push({
      id: idOf('bridge'),
      name: 'br',
      driver: 'bridge',
      subnets: ['198.18.7.0/24'],
      reserved: ['198.18.7.1', '198.18.7.2'], // --gateway and an --aux-address
      endpoints: [{ id: idOf('br-ep'), containerId: 'c0ffee', ipv4: '198.18.7.3' }],
    });
    const repairs = await host.reconcileDocker(restarted, view);
    expect(repairs!.map((r) => `${r.kind} ${JSON.stringify(r.detail)}`).sort()).toEqual([
      'address-unknown-to-docker {"pool":"198.18.5.0/24","address":"198.18.5.99","kind":"address"}',
      'address-unknown-to-docker {"pool":"198.18.7.0/24","address":"198.18.7.4","kind":"address"}',
      'pool-unknown-to-docker {"pool":"198.18.8.0/24","addresses":0}',
    ]);
    expect(restarted.plugin.state.allocations('198.18.7.0/24').map((a) => a.address).sort()).toEqual(['198.18.7.1', '198.18.7.2', '198.18.7.3']);
  });

  it('removes a network Docker forgot, with its pool route and rules', async () => {
    const { host, sim, run } = await hostWithContainers(0);
    sim.belief.networks.clear();
    const repairs = await host.reconcileDocker(run, dockerViewOf(sim.belief));
    expect(repairs!.map((r) => r.kind)).toEqual(['network-unknown-to-docker', 'pool-unknown-to-docker']);
    expect(host.links.poolRoutes.size).toBe(0);
    expectConsistent(host, run.plugin, sim.belief);
  });

  it('when Docker does not answer: retries, then gives up and changes nothing', async () => {
    const { host, sim, run } = await hostWithContainers(2);
    sim.belief.endpoints.clear();
    const view = dockerViewOf(sim.belief);
    view.down = 'connect ENOENT /var/run/docker.sock';
    const slept: number[] = [];
    const p = run.plugin;
    const result = await reconcileWithDocker(
      { state: p.state, driver: p.driver, ipam: p.ipam, links: run.links, lock: p.lock, docker: view, log: silent, settleMs: 20_000, attempts: 3, retryMs: 1000, sleep: async (ms) => void slept.push(ms) },
      run.snapshot,
    );
    expect(result).toBeUndefined();
    expect(view.calls).toBe(3);
    expect(slept).toEqual([20_000, 1000, 2000]);
    expect(p.state.endpoints()).toHaveLength(2);
    expect(host.links.links.size).toBe(2);
  });

  it('reads Docker outside the lock: protocol calls are answered while Docker is slow', async () => {
    const { host, sim, run } = await hostWithContainers(1);
    const view = dockerViewOf(sim.belief);
    let answered = false;
    // If reconciliation held the lock while waiting for Docker, this would never finish (Docker waits on us).
    view.during = async () => {
      await run.plugin.lock.run(async () => {
        answered = true;
      });
    };
    await host.reconcileDocker(run, view);
    expect(answered).toBe(true);
  });

  it('says so (not repaired) when Docker knows an endpoint whose veth is gone and could not be put back', async () => {
    const { host, sim, run } = await hostWithContainers(1);
    const [rec] = run.plugin.state.endpoints();
    await host.links.deleteEndpointLink(rec!.hostIf); // and there is no namespace to put it back into
    const restarted = await host.start();
    expect(restarted.kernelRepairs.map((r) => r.kind)).toEqual(['veth-lost']);
    const repairs = await host.reconcileDocker(restarted, dockerViewOf(sim.belief));
    expect(repairs!.map((r) => [r.kind, r.repaired])).toEqual([['docker-endpoint-without-veth', false]]);
    expect(repairs![0]!.message).toMatch(/restart the container/);
    expect(restarted.plugin.state.endpoint(rec!.id)).toBeDefined();
  });

  it('snapshots every kind of object the state holds', async () => {
    const { run } = await hostWithContainers(2);
    const snap = snapshotState(run.plugin.state);
    expect([snap.networks.size, snap.endpoints.size, snap.pools.size, snap.allocations.size]).toEqual([1, 2, 1, 2]);
  });
});

describe('DockerView', () => {
  it("reads Docker 20.10's network inspect: endpoints with and without a sandbox, gateways and aux addresses", () => {
    const n = fromInspect({
      Id: NET,
      Name: 'web',
      Driver: 'portnet',
      IPAM: { Config: [{ Subnet: '198.18.1.0/24', Gateway: '169.254.1.1', AuxiliaryAddresses: { a: '198.18.1.9' } }] },
      Containers: {
        ['ab'.repeat(32)]: { Name: 'site', EndpointID: idOf('e1'), IPv4Address: '198.18.1.2/32', IPv6Address: '2001:db8:1::2/128' },
        [`ep-${idOf('e2')}`]: { Name: 'starting', EndpointID: idOf('e2'), IPv4Address: '' },
      },
    });
    expect(n).toEqual({
      id: NET,
      name: 'web',
      driver: 'portnet',
      subnets: ['198.18.1.0/24'],
      reserved: ['169.254.1.1', '198.18.1.9'],
      endpoints: [
        { id: idOf('e1'), containerId: 'ab'.repeat(32), name: 'site', ipv4: '198.18.1.2', ipv6: '2001:db8:1::2' },
        { id: idOf('e2'), name: 'starting' },
      ],
    });
  });

  it('the fake answers copies and fails like an absent Docker', async () => {
    const v = new FakeDockerView();
    v.nets = [{ id: 'x', name: 'x', driver: 'd', subnets: [], reserved: [], endpoints: [] }];
    (await v.networks())[0]!.name = 'changed';
    expect(v.nets[0]!.name).toBe('x');
    v.down = 'no Docker';
    await expect(v.networks()).rejects.toThrow('no Docker');
  });
});
