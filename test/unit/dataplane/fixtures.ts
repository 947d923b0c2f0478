import type { FirewallEndpoint, FirewallModel, FirewallNetwork, ResolvedExposure } from '../../../src/dataplane/model.js';

/** Models shared by the golden, plan and fake tests. Addresses from the test pools (198.18.0.0/15). */

export function network(index: number, overrides: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return {
    id: `${String(index).repeat(4)}aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999`.slice(0, 64),
    index,
    pools: [`198.18.${index}.0/24`],
    pools6: [],
    icc: true,
    masquerade: true,
    ...overrides,
  };
}

/** `n` picks both the address (198.18.<net>.<n+1>) and the interface name, so they are easy to match up. */
export function endpoint(net: FirewallNetwork, n: number, exposures: ResolvedExposure[] = []): FirewallEndpoint {
  const hex = `${net.index}${n}`.padStart(2, '0');
  return {
    id: `${hex}c0ffee${'0'.repeat(56)}`.slice(0, 64),
    networkId: net.id,
    hostIf: `pn${hex}c0ffee000`.slice(0, 13),
    address: `198.18.${net.index}.${n + 1}`,
    exposures,
  };
}

/** A dual-stack network: IPv6 pool 2001:db8:<index>::/64 next to the IPv4 one. */
export function network6(index: number, overrides: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return network(index, { pools6: [`2001:db8:${index}::/64`], ...overrides });
}

/** endpoint() with an IPv6 address too: 2001:db8:<net>::<n+1>. */
export function endpoint6(net: FirewallNetwork, n: number, exposures: ResolvedExposure[] = []): FirewallEndpoint {
  return { ...endpoint(net, n, exposures), address6: `2001:db8:${net.index}::${(n + 1).toString(16)}` };
}

/** The exposure with an allowlist. */
export function from(x: ResolvedExposure, ...sources: string[]): ResolvedExposure {
  return { ...x, sources };
}

/** The exposure bound to a host interface instead of an address. */
export function on(hostIface: string, x: ResolvedExposure): ResolvedExposure {
  const { hostIp: _, ...rest } = x;
  return { ...rest, hostIface };
}

export function tcp(hostPort: number, containerPort = hostPort, hostIp?: string): ResolvedExposure {
  return port('tcp', hostPort, hostPort, containerPort, containerPort, hostIp);
}

export function udp(hostPort: number, containerPort = hostPort, hostIp?: string): ResolvedExposure {
  return port('udp', hostPort, hostPort, containerPort, containerPort, hostIp);
}

export function port(
  proto: ResolvedExposure['proto'],
  hostPort: number,
  hostPortEnd: number,
  containerPort: number,
  containerPortEnd: number,
  hostIp?: string,
): ResolvedExposure {
  return { proto, hostPort, hostPortEnd, containerPort, containerPortEnd, ...(hostIp ? { hostIp } : {}) };
}

const net1 = network(1);
const net2 = network(2, { icc: false, masquerade: false });
const dual = network6(3);

/** The golden cases: name → model. Each file is test/unit/dataplane/golden/<name>.nft. */
export const GOLDEN_MODELS: Record<string, FirewallModel> = {
  empty: { networks: [], endpoints: [] },
  'one-endpoint': { networks: [net1], endpoints: [endpoint(net1, 1)] },
  'exposures-all-addresses': {
    networks: [net1],
    endpoints: [endpoint(net1, 1, [tcp(8080, 80), port('tcp', 7000, 7003, 5000, 5003), udp(5353, 53)])],
  },
  'host-ip-bound': {
    networks: [net1],
    endpoints: [endpoint(net1, 1, [tcp(9090, 90, '198.51.100.1')])],
  },
  'loopback-bound': {
    networks: [net1],
    endpoints: [endpoint(net1, 1, [tcp(5432, 5432, '127.0.0.1')])],
  },
  'icc-off': {
    networks: [network(1, { icc: false })],
    endpoints: [endpoint(network(1), 1, [tcp(8080, 80)]), endpoint(network(1), 2)],
  },
  'masquerade-off': {
    networks: [network(1, { masquerade: false })],
    endpoints: [endpoint(network(1), 1, [tcp(8080, 80)])],
  },
  'two-networks': {
    networks: [net2, net1],
    endpoints: [
      endpoint(net2, 2),
      endpoint(net1, 1, [tcp(8080, 80), tcp(5432, 5432, '127.0.0.1')]),
      endpoint(net2, 1, [tcp(8081, 81), udp(5353, 53, '198.51.100.1')]),
      endpoint(net1, 2),
    ],
  },
  allowlists: {
    networks: [net1],
    endpoints: [
      endpoint(net1, 1, [
        from(tcp(8080, 80), '10.0.0.0/8', '198.51.100.7/32', '2001:db8:ff::/48'),
        // Reaches container port 80 as well: the direct path merges both lists (10.2.0.0/16 is inside 10/8).
        from(tcp(8081, 80), '10.2.0.0/16', '192.0.2.0/24'),
        from(tcp(9090, 90, '198.51.100.1'), '192.0.2.0/24'),
        from(on('eth0', udp(5353, 53)), '10.0.0.0/8'),
        // Only IPv6 sources: no IPv4 client may use it.
        from(tcp(8443, 443), '2001:db8::/32'),
        // `@any`: no allowlist after all.
        from(tcp(8000, 8000), '0.0.0.0/0', '::/0'),
        udp(5454, 54),
      ]),
      endpoint(net1, 2, [port('tcp', 7000, 7001, 5000, 5001)].map((x) => from(x, '203.0.113.0/24'))),
    ],
  },
  'interface-bound': {
    networks: [net1],
    endpoints: [
      endpoint(net1, 1, [on('eth0', tcp(8080, 80)), on('wlan0', tcp(8080, 81)), on('eth0', udp(5353, 53))]),
      endpoint(net1, 2, [tcp(5432, 5432, '127.0.0.1'), on('eth0', tcp(5432, 5432))]),
    ],
  },
  'dual-stack': {
    networks: [dual, net1],
    endpoints: [
      endpoint6(dual, 1, [tcp(8080, 80), tcp(8081, 81, '0.0.0.0'), tcp(8082, 82, '::'), tcp(9090, 90, '2001:db8::1')]),
      endpoint6(dual, 2, [from(udp(5353, 53), '10.0.0.0/8', '2001:db8:ff::/48'), on('eth0', tcp(8443, 443))]),
      // IPv4 only on a dual-stack network: its IPv6 host addresses are not applied.
      endpoint(dual, 3, [tcp(7070, 70), tcp(7071, 71, '::')]),
      endpoint(net1, 1, [tcp(8888, 88)]),
    ],
  },
  'ipv6-loopback': {
    networks: [dual],
    endpoints: [endpoint6(dual, 1, [tcp(5432, 5432, '::1'), udp(5454, 54, '127.0.0.1')])],
  },
};
