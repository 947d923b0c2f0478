import { describe, expect, it } from 'vitest';
import { endpointElements } from '../../../src/dataplane/nft/elements.js';
import { planEndpoint, planNetworks } from '../../../src/dataplane/nft/plan.js';
import { freeGatewaySlot, gatewaysOf } from '../../../src/network/gateway.js';
import type { EndpointRecord } from '../../../src/state/records.js';
import { NET, NET2, call, createNetwork, ep, plugin } from '../cli/support.js';

const SANDBOX = '/var/run/docker/netns/0123456789ab';

const joined = (id: string, sandboxKey: string, gatewaySlot?: number): EndpointRecord => ({
  id,
  networkId: NET,
  hostIf: `pn${id}`,
  peerIf: `pc${id}`,
  address: '198.18.1.2',
  prefix: 32,
  options: {},
  exposures: [],
  joined: true,
  sandboxKey,
  ...(gatewaySlot !== undefined ? { gatewaySlot } : {}),
});

describe('gateway slots', () => {
  it('gives the first interface 169.254.1.1 / fe80::1 and the Nth 169.254.1.N / fe80::N', () => {
    expect(gatewaysOf(undefined)).toEqual({ v4: '169.254.1.1', v6: 'fe80::1' });
    expect(gatewaysOf(2)).toEqual({ v4: '169.254.1.2', v6: 'fe80::2' });
    expect(gatewaysOf(20)).toEqual({ v4: '169.254.1.20', v6: 'fe80::14' });
  });

  it('picks the lowest slot no other joined endpoint of the same sandbox holds', () => {
    const others = [joined('a', SANDBOX), joined('b', SANDBOX, 3), joined('c', '/var/run/docker/netns/other', 2)];
    expect(freeGatewaySlot(others, SANDBOX, 'new')).toBe(2);
    // Left (not joined) endpoints hold nothing; an endpoint joining again keeps its own slot.
    expect(freeGatewaySlot([{ ...joined('a', SANDBOX), joined: false }], SANDBOX, 'new')).toBe(1);
    expect(freeGatewaySlot([joined('a', SANDBOX, 1)], SANDBOX, 'a')).toBe(1);
  });
});

describe('a container on two portnet networks', () => {
  async function attach(p: Awaited<ReturnType<typeof plugin>>, network: string, pool: string, id: string) {
    const a = await call(p, '/IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: {} });
    await call(p, '/NetworkDriver.CreateEndpoint', {
      NetworkID: network,
      EndpointID: id,
      Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' },
      Options: {},
    });
    return call(p, '/NetworkDriver.Join', { NetworkID: network, EndpointID: id, SandboxKey: SANDBOX, Options: {} });
  }

  it('answers each interface its own gateway and connected route, so Docker never adds one twice', async () => {
    const p = await plugin();
    await createNetwork(p, NET, '198.18.1.0/24');
    await createNetwork(p, NET2, '198.18.2.0/24');
    const first = await attach(p, NET, '198.18.1.0/24', ep(1));
    const second = await attach(p, NET2, '198.18.2.0/24', ep(2));
    expect([first.Gateway, first.StaticRoutes]).toEqual(['169.254.1.1', [{ Destination: '169.254.1.1/32', RouteType: 1 }]]);
    expect([second.Gateway, second.StaticRoutes]).toEqual(['169.254.1.2', [{ Destination: '169.254.1.2/32', RouteType: 1 }]]);

    // Replies leave through the container's one default route, whichever address they come from:
    // each veth may carry the container's other address, and nothing else.
    const model = p.firewall.model!;
    const [a, b] = [ep(1), ep(2)].map((id) => model.endpoints.find((e) => e.id === id)!);
    expect(a!.siblings).toEqual([b!.address]);
    expect(b!.siblings).toEqual([a!.address]);
    const networks = new Map(planNetworks(model.networks).map((n) => [n.id, n]));
    const sources = endpointElements(planEndpoint(a!, networks)).filter((e) => e.set === 'endpoint_sources').map((e) => e.key);
    expect(sources).toEqual([`"${a!.hostIf}" . ${a!.address}`, `"${a!.hostIf}" . ${b!.address}`]);
    // The first leaves and a third network joins: it takes the freed first slot.
    await call(p, '/NetworkDriver.Leave', { NetworkID: NET, EndpointID: ep(1) });
    await call(p, '/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: ep(1) });
    const again = await attach(p, NET, '198.18.1.0/24', ep(3));
    expect(again.Gateway).toBe('169.254.1.1');
    // A container alone on one network has no siblings.
    await call(p, '/NetworkDriver.Leave', { NetworkID: NET2, EndpointID: ep(2) });
    expect(p.firewall.model!.endpoints.find((e) => e.id === ep(3))!.siblings).toBeUndefined();
  });
});
