import type { Exposure } from '../expose/types.js';

/**
 * Everything the firewall needs to know, derived from portnet's state. The firewall is rendered
 * from this value alone, so the same state always gives the same ruleset.
 */
export interface FirewallModel {
  networks: FirewallNetwork[];
  endpoints: FirewallEndpoint[];
}

export interface FirewallNetwork {
  id: string;
  /** Small stable number, unique among live networks; used in nft chain/set names. */
  index: number;
  /** IPv4 pools (CIDR) of the network. */
  pools: string[];
  /** IPv6 pools (CIDR) of the network; empty unless it was created with --ipv6. */
  pools6: string[];
  /** Same-network traffic to any port (true, the default) or only to exposed ports. */
  icc: boolean;
  /** Masquerade traffic from the pools that leaves through a host interface. */
  masquerade: boolean;
}

/**
 * A published port with its host port already resolved (never 0); where it was asked for does not
 * matter here. `sources` is the effective allowlist (the item's own, else the network default); the
 * firewall ignores it on loopback-bound exposures, since only the host's own processes, which are
 * never filtered, can use those. Without hostIp and hostIface an exposure covers both families, but
 * IPv6 only where the endpoint has an address6.
 */
export type ResolvedExposure = Omit<Exposure, 'origin'>;

export interface FirewallEndpoint {
  id: string;
  networkId: string;
  /** Host side of the veth, `pn` + 11 hex characters of the endpoint ID. */
  hostIf: string;
  /** IPv4 address of the container, without prefix length. */
  address: string;
  /** IPv6 address of the container (dual-stack networks), without prefix length. */
  address6?: string;
  /**
   * Addresses (either family) of the container's other portnet endpoints. The container routes its
   * replies through its default route whatever address they come from, so this veth may carry
   * them too; anti-spoofing admits them here and nothing else.
   */
  siblings?: string[];
  exposures: ResolvedExposure[];
}

/** The packet filter and NAT: one implementation on nftables (+ DOCKER-USER), one fake. */
export interface Firewall {
  /** Makes the kernel match `model` exactly, in one atomic transaction. */
  apply(model: FirewallModel): Promise<void>;
  /** Removes every rule portnet made (its tables and its DOCKER-USER rules). */
  remove(): Promise<void>;
}
