import { describe, expect, it } from 'vitest';
import { fakePlugin } from '../support/plugin.js';

const NET = 'aa'.repeat(32);
const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);

async function network(p: Awaited<ReturnType<typeof fakePlugin>>, generic: Record<string, string> = {}) {
  await p.driver.createNetwork({ NetworkID: NET, Options: { 'com.docker.network.generic': generic }, IPv4Data: [{ Pool: '198.18.5.0/24' }], IPv6Data: [] });
}

function endpoint(p: Awaited<ReturnType<typeof fakePlugin>>, n: number, options: Record<string, unknown> = {}) {
  return p.driver.createEndpoint({
    NetworkID: NET,
    EndpointID: hex(n),
    Interface: { Address: `198.18.5.${n}/32`, AddressIPv6: '', MacAddress: '' },
    Options: options,
  });
}

const join = (p: Awaited<ReturnType<typeof fakePlugin>>, n: number, options: Record<string, unknown> = {}) =>
  p.driver.join({ NetworkID: NET, EndpointID: hex(n), SandboxKey: '/var/run/docker/netns/x', Options: options });

describe('network driver', () => {
  it('reads icc and masquerade from -o, and refuses an address outside the network', async () => {
    const p = await fakePlugin();
    await network(p, { 'com.example.icc': 'false', 'com.example.masquerade': 'off' });
    expect(p.firewall.model?.networks).toEqual([{ id: NET, index: 1, pools: ['198.18.5.0/24'], pools6: [], icc: false, masquerade: false }]);
    await expect(
      p.driver.createEndpoint({ NetworkID: NET, EndpointID: hex(1), Interface: { Address: '198.18.6.1/24', AddressIPv6: '', MacAddress: '' }, Options: {} }),
    ).rejects.toThrow('Interface.Address "198.18.6.1/24" is in none of the network\'s pools (198.18.5.0/24)');
  });

  it('a failed Join (firewall refused) leaves no veth and no rules for the endpoint', async () => {
    const p = await fakePlugin();
    await network(p);
    await endpoint(p, 1);
    p.firewall.failNext = new Error('nft: syntax error');
    await expect(join(p, 1)).rejects.toThrow('nft: syntax error');
    expect(p.links.links.size).toBe(0);
    expect(p.state.endpoint(hex(1))?.joined).toBe(false);
  });

  it('a failed CreateNetwork leaves no pool route and no state', async () => {
    const p = await fakePlugin();
    p.firewall.failNext = new Error('nft: no such table');
    await expect(network(p)).rejects.toThrow('nft: no such table');
    expect(p.links.poolRoutes.size).toBe(0);
    expect(p.state.networks()).toEqual([]);
  });

  it('publishes expose items and -p, keeps a picked ephemeral port across Join and Program, and refuses a taken port', async () => {
    const p = await fakePlugin();
    await network(p);
    const portmap = [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 0, HostPortEnd: 0 }];
    await endpoint(p, 1, { 'com.example.expose': '8080:80 53/udp', 'com.docker.network.portmap': portmap });
    await join(p, 1, { 'com.docker.network.portmap': portmap });
    await p.driver.programExternalConnectivity({ NetworkID: NET, EndpointID: hex(1), Options: { 'com.docker.network.portmap': portmap } });
    const [ep] = p.firewall.model!.endpoints;
    expect(ep!.exposures).toEqual([
      { hostPort: 8080, hostPortEnd: 8080, containerPort: 80, containerPortEnd: 80, proto: 'tcp' },
      { hostPort: 53, hostPortEnd: 53, containerPort: 53, containerPortEnd: 53, proto: 'udp' },
      { hostPort: 49153, hostPortEnd: 49153, containerPort: 80, containerPortEnd: 80, proto: 'tcp' },
    ]);
    // A second endpoint asking for 8080 is refused by name, and leaves nothing behind.
    await expect(endpoint(p, 2, { 'com.example.expose': '8080:81' })).rejects.toThrow(
      `host port 8080/tcp on all addresses is already published by endpoint ${hex(1).slice(0, 12)}`,
    );
    expect(p.state.endpoint(hex(2))).toBeUndefined();
    // Its own ephemeral port does not collide with the first one's.
    await endpoint(p, 3, { 'com.docker.network.portmap': portmap });
    await join(p, 3);
    expect(p.firewall.model!.endpoints.find((e) => e.id === hex(3))!.exposures[0]!.hostPort).toBe(49154);
  });

  it('refuses a bad expose value quoting the item, with nothing half-made', async () => {
    const p = await fakePlugin();
    await network(p);
    await expect(endpoint(p, 1, { 'com.example.expose': '80 $(reboot)' })).rejects.toThrow(/\$\(reboot\)/);
    expect(p.state.endpoints()).toEqual([]);
  });

  it('DeleteEndpoint removes the veth and the endpoint\'s rules; DeleteNetwork the pool route', async () => {
    const p = await fakePlugin();
    await network(p);
    await endpoint(p, 1, { 'com.example.expose': '80' });
    await join(p, 1);
    expect(p.links.links.size).toBe(1);
    await p.driver.leave(NET, hex(1));
    await p.driver.deleteEndpoint(NET, hex(1));
    expect(p.links.links.size).toBe(0);
    expect(p.firewall.model!.endpoints).toEqual([]);
    await p.driver.deleteNetwork(NET);
    expect(p.links.poolRoutes.size).toBe(0);
    expect(p.state.allKeys()).toEqual([]);
  });
});
