import type { Resolved } from '../expose/resolve.js';
import type { Family } from '../ipam/types.js';

/** What portnet persists. Keys are listed beside each record so the layout is visible in one place. */

/** `pool/<poolId>` */
export interface PoolRecord {
  id: string;
  addressSpace: string;
  family: Family;
  /** The pool's CIDR (Docker's --subnet, or a subnet carved from the default range). */
  pool: string;
  /** Docker's --ip-range, when given: endpoint addresses come from here. */
  subPool?: string;
  options: Record<string, string>;
  /** True when portnet chose the subnet (no --subnet). */
  carved: boolean;
}

/** `cursor/<poolId>`: the address handed out last, so allocation continues round-robin after a restart. */
export interface CursorRecord {
  address: string;
}

/** `alloc/<poolId>/<ipKey>`: one held address; the key makes "held twice" impossible. */
export interface AllocationRecord {
  poolId: string;
  address: string;
  /** 'gateway' for Docker's gateway request; 'address' for endpoints, --ip and --aux-address alike. */
  kind: 'gateway' | 'address';
}

/** `carve/<cidr>`: the last subnet carved from the default range (round-robin across restarts). */

/** `net/<networkId>` */
export interface NetworkRecord {
  id: string;
  /** Small number unique among live networks, used in nft names. */
  index: number;
  /** IPv4 pools of the network as Docker reported them in CreateNetwork. */
  pools: string[];
  /** IPv6 pools (IPv6Data, with --ipv6); absent in state written before IPv6 existed. */
  pools6?: string[];
  /** `com.example.expose.from`: sources allowed on exposures that name none (canonical CIDRs). */
  exposeFrom?: string[];
  options: Record<string, string>;
  icc: boolean;
  masquerade: boolean;
  internal: boolean;
}

/** `ep/<endpointId>` */
export interface EndpointRecord {
  id: string;
  networkId: string;
  hostIf: string;
  /** Container-side name while the veth is in the host namespace (Docker renames it eth0). */
  peerIf: string;
  /** IPv4 address without prefix length, and the prefix Docker gave it. */
  address: string;
  prefix: number;
  /** IPv6 address (dual-stack networks) without prefix length, and its prefix from Docker. */
  address6?: string;
  prefix6?: number;
  mac?: string;
  /** Driver options from CreateEndpoint (docker run --network name=…,driver-opt=…), as sent. */
  options: Record<string, string>;
  /**
   * Everything published: com.example.expose items first, then Docker's -p/-P (portmap, as last seen
   * in CreateEndpoint, Join or ProgramExternalConnectivity), each with the host port it was given.
   */
  exposures: Resolved[];
  /** Set by Join, cleared by Leave. */
  joined: boolean;
  /**
   * Which portnet interface of its sandbox this is (1, absent in older state, for the first): its
   * gateway is 169.254.1.N and fe80::N (network/gateway.ts). Set by Join.
   */
  gatewaySlot?: number;
  sandboxKey?: string;
}
