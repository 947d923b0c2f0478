/** One published port (or port range) of one endpoint, whatever syntax it came from. */
export type Proto = 'tcp' | 'udp' | 'sctp';

export interface Exposure {
  /**
   * Canonical host address the exposure is bound to (see hostip.ts); undefined means every host
   * address of both families. `0.0.0.0` means every IPv4 address only and `::` every IPv6 address
   * only (Docker's `-p 0.0.0.0:…` / `-p [::]:…`).
   */
  hostIp?: string;
  /**
   * Host interface the exposure is bound to by name (`%eth0:8080:80`): every address of that
   * interface, of both families, and only packets that arrive on it. Never set together with hostIp.
   */
  hostIface?: string;
  /**
   * Source addresses that may use the exposure, as canonical CIDRs of either family (`@10.0.0.0/8`).
   * Undefined means any source. On an exposure of the model (ResolvedExposure) this is the effective
   * list: the item's own, else the network's `com.example.expose.from`.
   */
  sources?: string[];
  /** First host port; 0 means "pick an ephemeral port" (Docker's `-p 80`, `-P`). */
  hostPort: number;
  /**
   * Last host port of the range; equal to hostPort for a single port (0 when hostPort is 0).
   * A host range longer than the container range can only be a single container port with a
   * host range: Docker's `-p 8000-8010:80`, "pick ONE free port of 8000-8010" (see hostPortToPick).
   */
  hostPortEnd: number;
  containerPort: number;
  containerPortEnd: number;
  proto: Proto;
  /** Where the user said it: the com.example.expose option or Docker's -p/--publish/-P. */
  origin: 'option' | 'publish';
}

/**
 * True while the host port is still to be chosen: ephemeral (hostPort 0) or one port out of
 * [hostPort, hostPortEnd]. Such an exposure claims no host port until it is resolved.
 */
export function hostPortToPick(e: Exposure): boolean {
  return e.hostPort === 0 || e.hostPortEnd - e.hostPort !== e.containerPortEnd - e.containerPort;
}

/** Thrown for a bad exposure; the message quotes the offending item. */
export class ExposeError extends Error {
  override name = 'ExposeError';
}
