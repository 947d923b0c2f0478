/**
 * A routed endpoint's link in the host namespace: veth pair, sysctls and the /32 route; with
 * address6 also fe80::1 on the host side, the /128 route and the `local ::1` route.
 */
export interface EndpointLinkSpec {
  hostIf: string;
  peerIf: string;
  /** IPv4 address of the container (no prefix). */
  address: string;
  /** IPv6 address of the container (no prefix), on dual-stack networks. */
  address6?: string;
  /** The host side's link-local address, the container's IPv6 gateway (fe80::1 when absent). */
  gateway6?: string;
  mtu: number;
  mac?: string;
}

/** What a container's side of a restored veth gets, as Docker configured it after Join. */
export interface SandboxSide {
  /** The container's network namespace (Join's SandboxKey), e.g. /var/run/docker/netns/0123456789ab. */
  sandbox: string;
  /** Prefix length Docker gave the address (what the IPAM answered, /32 for portnet pools). */
  prefix: number;
  /** The gateway Join answered; a connected /32 route and the default route point at it. */
  gateway: string;
  /** IPv6 prefix length and gateway (the host veth's link-local address), on dual-stack endpoints. */
  prefix6?: number;
  gateway6?: string;
}

/**
 * A route carrying portnet's protocol number, as read back from the kernel. `loopback` is the
 * `local ::1 dev pnX` route (table local) of an IPv6 endpoint's link.
 */
export type PortnetRoute =
  | { kind: 'pool'; cidr: string; text: string }
  | { kind: 'endpoint'; address: string; dev: string; text: string }
  | { kind: 'loopback'; dev: string; text: string }
  | { kind: 'other'; text: string };

/** What turning IPv6 forwarding on changed, for the log. */
export interface Ipv6ForwardingChange {
  /** Interfaces whose accept_ra went from 1 to 2, so that they keep taking router advertisements. */
  acceptRa: string[];
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
  /**
   * Routes portnet installed (its own route protocol number), as `ip route` prints them: IPv4, IPv6,
   * and IPv6 table local (the `local ::1` routes).
   */
  listRoutes(): Promise<string[]>;
  /**
   * Puts back what an existing host-side link needs: up, its sysctls and its routes (idempotent).
   * Without address6 it disables IPv6 on the link, which also flushes any IPv6 route through it.
   */
  repairEndpointLink(spec: EndpointLinkSpec): Promise<void>;
  /** Removes one /32 (or IPv6 /128) route portnet installed; absent is fine. */
  removeEndpointRoute(address: string, dev: string): Promise<void>;
  /**
   * Sets net.ipv6.conf.all.forwarding=1 unless it is on already (undefined then). Interfaces that
   * use router advertisements (an RA-learned route or a SLAAC address) and have accept_ra=1 are
   * first set to 2: with forwarding on, the kernel ignores their advertisements and purges the
   * default routes learnt from them. Other interfaces keep ignoring them, as a router should.
   */
  enableIpv6Forwarding(): Promise<Ipv6ForwardingChange | undefined>;
  /** Whether the network namespace file of a container (Join's SandboxKey) still exists. */
  sandboxExists(sandbox: string): Promise<boolean>;
  /**
   * Re-creates the veth of a container whose pair was destroyed while the container kept running:
   * the host side as createEndpointLink makes it, the container side straight into its namespace,
   * named like Docker names it (`eth` + the first free index) and configured as Docker did after
   * Join (address, connected route to the gateway, default route if none). Returns the name inside.
   * All or nothing: on failure the pair is removed again.
   */
  restoreEndpointLink(spec: EndpointLinkSpec, side: SandboxSide): Promise<string>;
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

const V4 = String.raw`(?:\d{1,3}\.){3}\d{1,3}`;
// At least one colon, so that words such as `default` never read as an address.
const V6 = String.raw`[0-9a-f]*:[0-9a-f:]*`;
const POOL_ROUTE = new RegExp(`^unreachable (${V4}/\\d{1,2}|${V6}/\\d{1,3})(?:\\s|$)`);
const ENDPOINT_ROUTE = new RegExp(`^(${V4})(?:/32)? dev (\\S+)(?:\\s|$)`);
const ENDPOINT_ROUTE6 = new RegExp(`^(${V6})(?:/128)? dev (\\S+)(?:\\s|$)`);
const LOOPBACK_ROUTE = /^local ::1(?:\/128)? dev (\S+)(?:\s|$)/;

/** Reads one line of `ip -4|-6 route show [table local] proto 91` (or the fake's equivalent). */
export function parsePortnetRoute(line: string): PortnetRoute {
  const text = line.trim();
  const pool = POOL_ROUTE.exec(text);
  if (pool) return { kind: 'pool', cidr: pool[1]!, text };
  const loopback = LOOPBACK_ROUTE.exec(text);
  if (loopback) return { kind: 'loopback', dev: loopback[1]!, text };
  const ep = ENDPOINT_ROUTE.exec(text) ?? ENDPOINT_ROUTE6.exec(text);
  if (ep) return { kind: 'endpoint', address: ep[1]!, dev: ep[2]!, text };
  return { kind: 'other', text };
}

/**
 * A sandbox path is handed to `nsenter --net=` and `ip … netns`: only an absolute path of plain
 * characters, with no `..`, is accepted (Docker's are /var/run/docker/netns/<12 hex>).
 */
export function checkSandboxPath(sandbox: string): string {
  if (!/^\/[A-Za-z0-9_./-]{1,200}$/.test(sandbox) || sandbox.split('/').includes('..')) {
    throw new Error(`sandbox path ${JSON.stringify(sandbox.slice(0, 120))} is not a plain absolute path`);
  }
  return sandbox;
}

/** `eth` + the lowest index not taken, the way Docker names a container's interfaces. */
export function firstFreeEth(names: readonly string[]): string {
  const taken = new Set(names);
  let i = 0;
  while (taken.has(`eth${i}`)) i++;
  return `eth${i}`;
}
