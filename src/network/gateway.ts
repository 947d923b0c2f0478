import { ROUTED_GATEWAY_V4, ROUTED_GATEWAY_V6 } from '../ipam/service.js';
import type { EndpointRecord } from '../state/records.js';

/**
 * The gateway a container's portnet interface routes through. Each portnet interface of one
 * container needs its own: Docker installs a connected route to the gateway on the interface (Join's
 * StaticRoutes), and a second `169.254.1.1/32 dev eth1` beside `169.254.1.1/32 dev eth0` fails
 * with "file exists", so `docker network connect` of a second portnet network would be refused.
 * The Nth interface of a sandbox gets 169.254.1.N and fe80::N; the first keeps the classic
 * 169.254.1.1 / fe80::1. Proxy ARP answers for any of them, and fe80::N is the host veth's address.
 */
export const MAX_GATEWAY_SLOT = 254;

export interface Gateways {
  v4: string;
  v6: string;
}

export function gatewaysOf(slot: number | undefined): Gateways {
  const n = slot ?? 1;
  if (n === 1) return { v4: ROUTED_GATEWAY_V4, v6: ROUTED_GATEWAY_V6 };
  return { v4: `169.254.1.${n}`, v6: `fe80::${n.toString(16)}` };
}

/** The other portnet endpoints joined to the same container (Join's SandboxKey) as `self`. */
export function sandboxPeers(endpoints: readonly EndpointRecord[], sandboxKey: string | undefined, self: string): EndpointRecord[] {
  return sandboxKey === undefined ? [] : endpoints.filter((e) => e.id !== self && e.joined && e.sandboxKey === sandboxKey);
}

/**
 * The lowest slot no other joined endpoint of the same sandbox holds. An endpoint that Joins again
 * (Docker retrying) does not count against itself, so it keeps its slot.
 */
export function freeGatewaySlot(endpoints: readonly EndpointRecord[], sandboxKey: string, self: string): number {
  const taken = new Set(sandboxPeers(endpoints, sandboxKey, self).map((e) => e.gatewaySlot ?? 1));
  for (let n = 1; n <= MAX_GATEWAY_SLOT; n++) if (!taken.has(n)) return n;
  throw new Error(`sandbox ${sandboxKey} already has ${MAX_GATEWAY_SLOT} portnet interfaces`);
}
