import { describe, expect, it } from 'vitest';
import { buildFirewallModel } from '../../../src/network/firewallModel.js';
import type { Exposure } from '../../../src/expose/types.js';
import type { EndpointRecord, NetworkRecord } from '../../../src/state/records.js';

const network = (exposeFrom?: string[]): NetworkRecord => ({
  id: 'n1',
  index: 0,
  pools: ['198.18.1.0/24'],
  pools6: ['2001:db8:1::/64'],
  options: {},
  icc: true,
  masquerade: true,
  internal: false,
  ...(exposeFrom ? { exposeFrom } : {}),
});

const exposure = (extra: Partial<Exposure> = {}): Exposure => ({
  hostPort: 8080,
  hostPortEnd: 8080,
  containerPort: 80,
  containerPortEnd: 80,
  proto: 'tcp',
  origin: 'option',
  ...extra,
});

const endpoint = (...exposures: Exposure[]): EndpointRecord => ({
  id: 'e1',
  networkId: 'n1',
  hostIf: 'pne1',
  peerIf: 'pce1',
  address: '198.18.1.5',
  prefix: 32,
  address6: '2001:db8:1::5',
  prefix6: 128,
  options: {},
  exposures: exposures.map((x) => ({ requested: x, resolved: x })),
  joined: true,
});

const modelSources = (net: NetworkRecord, x: Exposure) =>
  buildFirewallModel([net], [endpoint(x)]).endpoints[0]!.exposures[0]!.sources;

describe('buildFirewallModel sources', () => {
  it("gives an exposure without its own sources the network's default", () => {
    expect(modelSources(network(['10.0.0.0/8']), exposure())).toEqual(['10.0.0.0/8']);
  });

  it("keeps an item's own sources over the network default", () => {
    expect(modelSources(network(['10.0.0.0/8']), exposure({ sources: ['192.0.2.0/24'] }))).toEqual(['192.0.2.0/24']);
  });

  it('turns @any (both families open) into no allowlist, overriding the default', () => {
    expect(modelSources(network(['10.0.0.0/8']), exposure({ sources: ['0.0.0.0/0', '::/0'] }))).toBeUndefined();
  });

  it('keeps an allowlist of one whole family: the other family is then shut', () => {
    expect(modelSources(network(), exposure({ sources: ['0.0.0.0/0'] }))).toEqual(['0.0.0.0/0']);
  });

  it('never gives a loopback exposure the network default', () => {
    expect(modelSources(network(['10.0.0.0/8']), exposure({ hostIp: '127.0.0.1' }))).toBeUndefined();
    expect(modelSources(network(['10.0.0.0/8']), exposure({ hostIp: '::1' }))).toBeUndefined();
  });

  it('carries the IPv6 address, the v6 pools and the interface binding', () => {
    const model = buildFirewallModel([network()], [endpoint(exposure({ hostIface: 'eth0' }))]);
    expect(model.networks[0]!.pools6).toEqual(['2001:db8:1::/64']);
    expect(model.endpoints[0]!.address6).toBe('2001:db8:1::5');
    expect(model.endpoints[0]!.exposures[0]!.hostIface).toBe('eth0');
  });
});
