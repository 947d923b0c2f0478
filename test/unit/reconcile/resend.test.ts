// Docker resends a call whose connection died (protocol sheet §1.5). When portnet died after its
// commit, the resent call reaches a new process: it must get the first answer, not an error that
// fails the user's command and leaves the first commit behind. Anything else stays refused.
import { describe, expect, it } from 'vitest';
import { IpamService } from '../../../src/ipam/service.js';
import { checkSandboxPath, firstFreeEth, parsePortnetRoute } from '../../../src/dataplane/links.js';
import { CONFIG, Host, idOf, silent } from './sim.js';

const NET = idOf('net1');
const pool = { AddressSpace: 'portnet-local', Pool: '198.18.5.0/24', SubPool: '', Options: { a: 'b' }, V6: false };

describe('a call resent to the restarted plugin', () => {
  it('CreateNetwork and CreateEndpoint: the same request again succeeds; a different one with the same ID is refused', async () => {
    const host = new Host();
    const { plugin: p } = await host.start();
    const net = { NetworkID: NET, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ Pool: '198.18.5.0/24' }], IPv6Data: [] };
    await p.ipam.requestPool(pool);
    await p.driver.createNetwork(net);
    const { plugin: q } = await host.start();
    await q.driver.createNetwork(net);
    await expect(q.driver.createNetwork({ ...net, IPv4Data: [{ Pool: '198.18.6.0/24' }] })).rejects.toThrow(
      `network ${NET} already exists with pools 198.18.5.0/24`,
    );
    const ep = { NetworkID: NET, EndpointID: idOf('ep'), Interface: { Address: '198.18.5.1/32', AddressIPv6: '', MacAddress: '' }, Options: { 'com.example.expose': '80' } };
    await q.driver.createEndpoint(ep);
    await q.driver.createEndpoint(ep);
    await expect(q.driver.createEndpoint({ ...ep, Interface: { ...ep.Interface, Address: '198.18.5.2/32' } })).rejects.toThrow(/already exists with address 198\.18\.5\.1/);
    expect(q.state.endpoints()).toHaveLength(1);
    expect(q.state.endpoints()[0]!.exposures).toHaveLength(1);
  });

  it('RequestPool: the pool committed by the previous process is answered once, to an identical request, within the window', async () => {
    const host = new Host();
    const { plugin: p } = await host.start();
    const first = await p.ipam.requestPool(pool);
    // In the same process an identical request is a second network: refused.
    await expect(p.ipam.requestPool(pool)).rejects.toThrow('overlaps pool "198.18.5.0/24"');
    const { plugin: q } = await host.start();
    await expect(q.ipam.requestPool({ ...pool, Options: {} })).rejects.toThrow('overlaps');
    await expect(q.ipam.requestPool({ ...pool, SubPool: '198.18.5.0/25' })).rejects.toThrow('overlaps');
    expect(await q.ipam.requestPool(pool)).toEqual(first);
    await expect(q.ipam.requestPool(pool)).rejects.toThrow('overlaps');
  });

  it('RequestPool: not once a network uses the pool, nor once an address was taken from it, nor after the window', async () => {
    const host = new Host();
    const { plugin: p } = await host.start();
    await p.ipam.requestPool(pool);
    await p.ipam.requestAddress({ PoolID: '198.18.5.0/24', Address: '198.18.5.9', Options: {} });
    await expect((await host.start()).plugin.ipam.requestPool(pool)).rejects.toThrow('overlaps');

    const host2 = new Host();
    await (await host2.start()).plugin.ipam.requestPool(pool);
    const { plugin: q } = await host2.start();
    let now = 1000;
    const late = new IpamService(q.state, CONFIG, silent, { now: () => now, retryWindowMs: 30_000 });
    now += 30_001;
    await expect(late.requestPool(pool)).rejects.toThrow('overlaps');
  });

  it('RequestAddress --ip: answered once on a portnet network when no endpoint has the address; refused otherwise', async () => {
    const host = new Host();
    const { plugin: p } = await host.start();
    await p.ipam.requestPool(pool);
    await p.driver.createNetwork({ NetworkID: NET, Options: {}, IPv4Data: [{ Pool: '198.18.5.0/24' }], IPv6Data: [] });
    const ask = { PoolID: '198.18.5.0/24', Address: '198.18.5.77', Options: {} };
    await p.ipam.requestAddress(ask);
    await p.ipam.requestAddress({ ...ask, Address: '198.18.5.78' });
    await p.driver.createEndpoint({ NetworkID: NET, EndpointID: idOf('a'), Interface: { Address: '198.18.5.78/32', AddressIPv6: '', MacAddress: '' }, Options: {} });
    const { plugin: q } = await host.start();
    expect(await q.ipam.requestAddress(ask)).toEqual({ Address: '198.18.5.77/32', Data: {} });
    await expect(q.ipam.requestAddress(ask)).rejects.toThrow('Address "198.18.5.77" is already in use');
    await expect(q.ipam.requestAddress({ ...ask, Address: '198.18.5.78' })).rejects.toThrow('already in use');
    expect(q.state.allocations('198.18.5.0/24')).toHaveLength(2);
  });

  it('RequestAddress --ip on a pool without a portnet network (IPAM only) is never taken for a resend', async () => {
    const host = new Host();
    const { plugin: p } = await host.start();
    await p.ipam.requestPool(pool);
    const ask = { PoolID: '198.18.5.0/24', Address: '198.18.5.77', Options: {} };
    await p.ipam.requestAddress(ask);
    await expect((await host.start()).plugin.ipam.requestAddress(ask)).rejects.toThrow('already in use');
  });
});

describe('link helpers used by the repairs', () => {
  it('reads the routes portnet installed', () => {
    expect(parsePortnetRoute('unreachable 198.18.5.0/24 metric 3999')).toEqual({ kind: 'pool', cidr: '198.18.5.0/24', text: 'unreachable 198.18.5.0/24 metric 3999' });
    expect(parsePortnetRoute('198.18.5.7 dev pn0123456789a scope link ')).toMatchObject({ kind: 'endpoint', address: '198.18.5.7', dev: 'pn0123456789a' });
    expect(parsePortnetRoute('blackhole 10.0.0.0/8')).toMatchObject({ kind: 'other' });
  });

  it('accepts only plain absolute sandbox paths', () => {
    expect(checkSandboxPath('/var/run/docker/netns/0123456789ab')).toBe('/var/run/docker/netns/0123456789ab');
    for (const bad of ['relative/x', '/var/run/../../etc/shadow', '/x y', '/x;reboot', '', `/${'a'.repeat(300)}`, '/x\n/y']) {
      expect(() => checkSandboxPath(bad), bad).toThrow(/is not a plain absolute path/);
    }
  });

  it("names a restored interface like Docker: eth + the lowest free index", () => {
    expect(firstFreeEth(['lo'])).toBe('eth0');
    expect(firstFreeEth(['lo', 'eth0', 'eth2'])).toBe('eth1');
  });
});
