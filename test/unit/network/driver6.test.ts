// Dual-stack networks through the driver: IPv6Data pools, IPv6 endpoint addresses, Join's IPv6 answer.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config.js';
import { FakeFirewall } from '../../../src/dataplane/fakeFirewall.js';
import { FakeLinks } from '../../../src/dataplane/fakeLinks.js';
import { buildPlugin } from '../../../src/serve.js';
import { MemoryStore } from '../../../src/state/memoryStore.js';

const NET = 'aa'.repeat(32);
const NET2 = 'bb'.repeat(32);
const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);

/** A plugin on fakes whose log lines are kept, to check what it says it changed on the host. */
async function plugin() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const links = new FakeLinks();
  const firewall = new FakeFirewall();
  const p = await buildPlugin({ ...DEFAULTS, defaultPool: '198.18.128.0/17' }, { store: new MemoryStore(), links, firewall, log: pino({ level: 'info' }, sink) });
  return { ...p, links, firewall, lines };
}
type P = Awaited<ReturnType<typeof plugin>>;

function dualStack(p: P, id = NET, v4 = '198.18.5.0/24', v6 = '2001:db8:5::/64', generic: Record<string, string> = {}) {
  return p.driver.createNetwork({
    NetworkID: id,
    Options: { 'com.docker.network.enable_ipv6': true, 'com.docker.network.generic': generic },
    IPv4Data: [{ AddressSpace: 'portnet-local', Pool: v4, Gateway: '169.254.1.1/32' }],
    IPv6Data: v6 ? [{ AddressSpace: 'portnet-local', Pool: v6, Gateway: 'fe80::1/64' }] : [],
  });
}

const endpoint = (p: P, n: number, v6 = `2001:db8:5::${n}/128`, network = NET) =>
  p.driver.createEndpoint({ NetworkID: network, EndpointID: hex(n), Interface: { Address: `198.18.5.${n}/32`, AddressIPv6: v6, MacAddress: '' }, Options: {} });

const join = (p: P, n: number) => p.driver.join({ NetworkID: NET, EndpointID: hex(n), SandboxKey: '/var/run/docker/netns/x', Options: {} });

describe('network driver, IPv6', () => {
  it('creates a dual-stack network: both pools recorded, routed unreachable and in the firewall model', async () => {
    const p = await plugin();
    await dualStack(p, NET, '198.18.5.0/24', '2001:DB8:5:0::/64', { 'com.example.expose.from': '192.0.2.0/24' });
    expect(p.state.network(NET)).toMatchObject({ pools: ['198.18.5.0/24'], pools6: ['2001:db8:5::/64'], exposeFrom: ['192.0.2.0/24'] });
    expect([...p.links.poolRoutes]).toEqual(['198.18.5.0/24', '2001:db8:5::/64']);
    expect(p.firewall.model!.networks).toEqual([{ id: NET, index: 1, pools: ['198.18.5.0/24'], pools6: ['2001:db8:5::/64'], icc: true, masquerade: true }]);
    // Docker resending the same call is answered as the first time; another pool list is refused.
    await dualStack(p);
    await expect(dualStack(p, NET, '198.18.5.0/24', '2001:db8:6::/64')).rejects.toThrow(`network ${NET} already exists with pools 198.18.5.0/24, 2001:db8:5::/64`);
    await p.driver.deleteNetwork(NET);
    expect(p.links.poolRoutes.size).toBe(0);
    expect(p.state.allKeys()).toEqual([]);
  });

  it('refuses an IPv6-only network, a pool of the wrong family or with host bits, and overlaps; nothing is left behind', async () => {
    const p = await plugin();
    await expect(
      p.driver.createNetwork({ NetworkID: NET, Options: {}, IPv4Data: [], IPv6Data: [{ Pool: '2001:db8:5::/64' }] }),
    ).rejects.toThrow('IPv4Data is empty: a portnet network needs an IPv4 pool (IPv6-only networks are not supported; give an IPv4 --subnet too)');
    await expect(dualStack(p, NET, '198.18.5.0/24', '198.18.6.0/24')).rejects.toThrow('IPv6Data.0.Pool "198.18.6.0/24" is not an IPv6 CIDR');
    await expect(dualStack(p, NET, '2001:db8:6::/64', '2001:db8:5::/64')).rejects.toThrow('IPv4Data.0.Pool "2001:db8:6::/64" is not an IPv4 CIDR');
    await expect(dualStack(p, NET, '198.18.5.0/24', '2001:db8:5::1/64')).rejects.toThrow(
      'IPv6Data.0.Pool "2001:db8:5::1/64" has host bits set; did you mean "2001:db8:5::/64"?',
    );
    await expect(
      p.driver.createNetwork({ NetworkID: NET, Options: {}, IPv4Data: [{ Pool: '198.18.5.0/24' }], IPv6Data: [{ Pool: '2001:db8:5::/64' }, { Pool: '2001:db8:5::/96' }] }),
    ).rejects.toThrow('IPv6Data.0.Pool 2001:db8:5::/64 overlaps another pool of the same request');
    await dualStack(p);
    await expect(dualStack(p, NET2, '198.18.7.0/24', '2001:db8:5:0:1::/80')).rejects.toThrow(
      `IPv6Data.0.Pool 2001:db8:5:0:1::/80 overlaps pool 2001:db8:5::/64 of network ${NET.slice(0, 12)}`,
    );
    expect(p.state.networks().map((n) => n.id)).toEqual([NET]);
    expect([...p.links.poolRoutes]).toEqual(['198.18.5.0/24', '2001:db8:5::/64']);
  });

  it('a CreateNetwork whose IPv6 pool route fails takes back the IPv4 one and commits nothing', async () => {
    const p = await plugin();
    p.links.failPoolRoute = '2001:db8:5::/64';
    await expect(dualStack(p)).rejects.toThrow('RTNETLINK answers: Invalid argument (2001:db8:5::/64)');
    expect(p.links.poolRoutes.size).toBe(0);
    expect(p.state.networks()).toEqual([]);
    expect(p.firewall.model?.networks ?? []).toEqual([]);
  });

  it('records the endpoint IPv6 address; Join makes the v6 link, answers the fe80::1 gateway and turns on IPv6 forwarding once', async () => {
    const p = await plugin();
    p.links.acceptRa1.add('eth0');
    await dualStack(p);
    await endpoint(p, 7, '2001:DB8:5::7/128');
    expect(p.state.endpoint(hex(7))).toMatchObject({ address: '198.18.5.7', prefix: 32, address6: '2001:db8:5::7', prefix6: 128 });
    // Resent with the same addresses: nothing to do. With another IPv6 address: refused.
    await endpoint(p, 7, '2001:db8:5::7/128');
    await expect(endpoint(p, 7, '2001:db8:5::8/128')).rejects.toThrow(/already exists/);
    const answer = await join(p, 7);
    expect(answer).toEqual({
      InterfaceName: { SrcName: `pc${hex(7).slice(0, 11)}`, DstPrefix: 'eth' },
      Gateway: '169.254.1.1',
      GatewayIPv6: 'fe80::1',
      StaticRoutes: [
        { Destination: '169.254.1.1/32', RouteType: 1 },
        { Destination: 'fe80::1/128', RouteType: 1 },
      ],
      DisableGatewayService: true,
    });
    const hostIf = `pn${hex(7).slice(0, 11)}`;
    expect(p.links.links.get(hostIf)).toMatchObject({ address: '198.18.5.7', address6: '2001:db8:5::7' });
    expect(p.links.endpointRoutes.get('2001:db8:5::7')).toBe(hostIf);
    expect(p.links.loopbackRoutes.has(hostIf)).toBe(true);
    expect(p.firewall.model!.endpoints[0]).toMatchObject({ address: '198.18.5.7', address6: '2001:db8:5::7' });
    expect(p.links.ipv6Forwarding).toBe(true);
    const said = p.lines.filter((l) => String(l.msg).startsWith('turned on IPv6 forwarding'));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ level: 40, acceptRaSetTo2: ['eth0'] });
    expect(said[0]!.msg).toContain('set accept_ra=2 on eth0 first');
    // A second IPv6 endpoint finds forwarding on and says nothing more.
    await endpoint(p, 8);
    await join(p, 8);
    expect(p.lines.filter((l) => String(l.msg).startsWith('turned on IPv6 forwarding'))).toHaveLength(1);
    expect(await p.driver.endpointOperInfo(NET, hex(7))).toEqual({ Value: { address: '198.18.5.7', address6: '2001:db8:5::7', hostIf } });
  });

  it('an IPv4-only endpoint of a dual-stack network joins as before: no IPv6 gateway, no forwarding change', async () => {
    const p = await plugin();
    await dualStack(p);
    await endpoint(p, 9, '');
    const answer = await join(p, 9);
    expect(answer).not.toHaveProperty('GatewayIPv6');
    expect(answer.StaticRoutes).toEqual([{ Destination: '169.254.1.1/32', RouteType: 1 }]);
    expect(p.links.links.get(`pn${hex(9).slice(0, 11)}`)).not.toHaveProperty('address6');
    expect(p.links.ipv6Forwarding).toBe(false);
  });

  it('refuses an IPv6 address on a network without IPv6 pools, outside them, of the wrong family or taken; nothing is recorded', async () => {
    const p = await plugin();
    await dualStack(p, NET2, '198.18.5.0/24', '');
    await expect(endpoint(p, 1, '2001:db8:5::1/128', NET2)).rejects.toThrow(
      `Interface.AddressIPv6 "2001:db8:5::1/128": network ${NET2.slice(0, 12)} has no IPv6 pool (create it with --ipv6 and an IPv6 --subnet)`,
    );
    await p.driver.deleteNetwork(NET2);
    await dualStack(p, NET, '198.18.5.0/24', '2001:db8:5::/64');
    await expect(endpoint(p, 1, '2001:db8:6::1/128')).rejects.toThrow(`Interface.AddressIPv6 "2001:db8:6::1/128" is in none of the network's IPv6 pools (2001:db8:5::/64)`);
    await expect(endpoint(p, 1, '198.18.5.1/32')).rejects.toThrow('Interface.AddressIPv6 "198.18.5.1/32" must be IPv6');
    await expect(endpoint(p, 1, 'fe80::1')).rejects.toThrow(/Interface.AddressIPv6 "fe80::1" is not a CIDR/);
    await endpoint(p, 1, '2001:db8:5::1/128');
    await expect(endpoint(p, 2, '2001:db8:5::1/128')).rejects.toThrow(`address 2001:db8:5::1 is already used by endpoint ${hex(1).slice(0, 12)}`);
    expect(p.state.endpoints().map((e) => e.id)).toEqual([hex(1)]);
  });

  it('a Join that fails after the v6 link was made leaves no link and no route', async () => {
    const p = await plugin();
    await dualStack(p);
    await endpoint(p, 3);
    p.firewall.failNext = new Error('nft: syntax error');
    await expect(join(p, 3)).rejects.toThrow('nft: syntax error');
    expect(p.links.links.size).toBe(0);
    expect(p.links.endpointRoutes.size).toBe(0);
    expect(p.links.loopbackRoutes.size).toBe(0);
  });
});
