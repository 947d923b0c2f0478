/** A routed endpoint's link in the host namespace: veth pair, sysctls and the /32 route. */
export interface EndpointLinkSpec {
  hostIf: string;
  peerIf: string;
  /** IPv4 address of the container (no prefix). */
  address: string;
  mtu: number;
  mac?: string;
}

/** Kernel links and routes: one implementation over iproute2 and /proc/sys, one fake. */
export interface Links {
  /** Creates the veth pair, sets the host side's sysctls and routes the address to it; all or nothing. */
  createEndpointLink(spec: EndpointLinkSpec): Promise<void>;
  /** Removes the pair (and with it the route); absent is fine. */
  deleteEndpointLink(hostIf: string): Promise<void>;
  /** An `unreachable` route for a pool, so traffic to unallocated addresses never leaves the host. */
  addPoolRoute(cidr: string): Promise<void>;
  removePoolRoute(cidr: string): Promise<void>;
  /** Host-side endpoint links present in the kernel (names starting with `pn`). */
  listEndpointLinks(): Promise<string[]>;
  /** Routes portnet installed (its own route protocol number), as `ip route` prints them. */
  listRoutes(): Promise<string[]>;
}

/** Routes carry this protocol number, so portnet's own routes can be told from everyone else's. */
export const ROUTE_PROTO = '91';
/** High metric: a more specific or preferred route of the operator's always wins over our blackhole. */
export const POOL_ROUTE_METRIC = '3999';

export const HOST_IF_PREFIX = 'pn';
export const PEER_IF_PREFIX = 'pc';

/** `pn` + 11 hex characters of the endpoint ID: Linux allows 15 characters in a name. */
export function endpointLinkNames(endpointId: string): { hostIf: string; peerIf: string } {
  const short = endpointId.slice(0, 11).toLowerCase();
  return { hostIf: `${HOST_IF_PREFIX}${short}`, peerIf: `${PEER_IF_PREFIX}${short}` };
}
