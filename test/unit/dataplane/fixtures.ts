import type { FirewallEndpoint, FirewallModel, FirewallNetwork, ResolvedExposure } from '../../../src/dataplane/model.js';

/** Models shared by the golden, plan and fake tests. Addresses from the test pools (198.18.0.0/15). */

export function network(index: number, overrides: Partial<FirewallNetwork> = {}): FirewallNetwork {
  return {
    id: `${String(index).repeat(4)}aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999`.slice(0, 64),
    index,
    pools: [`198.18.${index}.0/24`],
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
};
