import { describeAddress, describeHost, formatExposure } from './format.js';
import { addressScope, commonAddresses, isLoopbackHostIp } from './hostip.js';
import { hostPortToPick, type Exposure, type Proto } from './types.js';

/** A host port range held by an endpoint. `label` describes the holder for people ("container web1"), may be "". */
export interface Claim {
  endpointId: string;
  label: string;
  exposure: Exposure;
}

/** Where two exposures meet: the first host port they share and the addresses they share. */
export interface Overlap {
  port: number;
  proto: Proto;
  /**
   * The addresses both hold (undefined = any). With hostIface set it narrows the interface's
   * addresses: undefined = all of them, `0.0.0.0` / `::` = those of one family, one address = an
   * address-bound exposure that may or may not belong to the interface.
   */
  hostIp: string | undefined;
  /** Set when an interface binding is involved: the shared addresses are (some of) this interface's. */
  hostIface?: string;
}

export interface Conflict extends Overlap {
  /** The incoming exposure that cannot be granted. */
  exposure: Exposure;
  /** The other side: a claim of some endpoint, or another exposure of the same incoming set. */
  holder: { claim: Claim } | { sibling: Exposure };
  message: string;
}

/**
 * Whether two exposures compete for a host (address, port, protocol). An exposure whose host port
 * is still to be picked claims nothing yet, so it overlaps nothing: check it again once resolved.
 * Source allowlists never matter: one host port leads to one endpoint, whoever may use it.
 */
export function overlap(a: Exposure, b: Exposure): Overlap | undefined {
  if (a.proto !== b.proto || hostPortToPick(a) || hostPortToPick(b)) return undefined;
  const first = Math.max(a.hostPort, b.hostPort);
  if (first > Math.min(a.hostPortEnd, b.hostPortEnd)) return undefined;
  const shared = sharedHost(a, b);
  if (shared === null) return undefined;
  return { port: first, proto: a.proto, ...shared };
}

/**
 * The host addresses two exposures have in common, or null for none. An interface binding covers
 * every address of its interface, of both families, and which addresses those are is only known at
 * packet time (that is its point: hosts whose addresses change). So it is held against any other
 * non-loopback address binding too: that address may be, or become, the interface's. Loopback
 * addresses can never arrive on another interface, and other interfaces are other packets.
 */
function sharedHost(a: Exposure, b: Exposure): Pick<Overlap, 'hostIp' | 'hostIface'> | null {
  if (a.hostIface === undefined && b.hostIface === undefined) {
    const hostIp = commonAddresses(a.hostIp, b.hostIp);
    return hostIp === null ? null : { hostIp };
  }
  if (a.hostIface !== undefined && b.hostIface !== undefined) {
    return a.hostIface === b.hostIface ? { hostIp: undefined, hostIface: a.hostIface } : null;
  }
  const [hostIface, other] = a.hostIface !== undefined ? [a.hostIface, b] : [b.hostIface!, a];
  if (addressScope(other.hostIp).kind !== 'one') return { hostIp: other.hostIp, hostIface };
  return isLoopbackHostIp(other.hostIp) ? null : { hostIp: other.hostIp, hostIface };
}

/**
 * The first clash of `incoming` (exposures wanted by endpoint `endpointId`) with `existing` claims
 * or with each other, in the order of `incoming`. A claim of the same endpoint for the very same
 * exposure is a replay (Docker repeats Join/Program, the plugin restarts), not a clash.
 */
export function findConflict(
  existing: readonly Claim[],
  endpointId: string,
  incoming: readonly Exposure[],
): Conflict | undefined {
  for (const [i, exposure] of incoming.entries()) {
    for (const claim of existing) {
      if (claim.endpointId === endpointId && sameExposure(claim.exposure, exposure)) continue;
      const where = overlap(exposure, claim.exposure);
      if (where) {
        const held = describeHost(claim.exposure);
        const on = held === describeWhere(where) ? '' : ` on ${held}`;
        const message = `${describePort(where)} is already published${on} by ${describeHolder(claim)}${caveat(where)}`;
        return { ...where, exposure, holder: { claim }, message };
      }
    }
    for (const sibling of incoming.slice(0, i)) {
      const where = overlap(exposure, sibling);
      if (where) {
        const message = `${describePort(where)} is published twice: ${formatExposure(sibling)} and ${formatExposure(exposure)}${caveat(where)}`;
        return { ...where, exposure, holder: { sibling }, message };
      }
    }
  }
  return undefined;
}

/** "host port 8080/tcp on 0.0.0.0", "host port 8080/tcp on %eth0" */
export function describePort(where: Overlap): string {
  return `host port ${where.port}/${where.proto} on ${describeWhere(where)}`;
}

/**
 * Why an interface binding and an address binding clash although nobody said they share an
 * address (empty otherwise), to end a message with.
 */
export function caveat(where: Overlap): string {
  if (where.hostIface === undefined || addressScope(where.hostIp).kind !== 'one') return '';
  return ` (${describeAddress(where.hostIp)} may be an address of ${where.hostIface}: an interface binding holds its port on every address that is not loopback)`;
}

function describeWhere(where: Overlap): string {
  if (where.hostIface === undefined) return describeAddress(where.hostIp);
  const scope = addressScope(where.hostIp);
  if (scope.kind === 'any') return `%${where.hostIface}`;
  if (scope.kind === 'family') return `the IPv${scope.family} addresses of %${where.hostIface}`;
  return describeAddress(where.hostIp);
}

/** Identity of an exposure, for sets and replay detection. */
export function exposureKey(e: Exposure): string {
  const host = e.hostIface !== undefined ? `%${e.hostIface}` : (e.hostIp ?? '*');
  const from = e.sources === undefined ? '-' : e.sources.join('+');
  return [e.origin, e.proto, host, e.hostPort, e.hostPortEnd, e.containerPort, e.containerPortEnd, from].join(' ');
}

export function sameExposure(a: Exposure, b: Exposure): boolean {
  return exposureKey(a) === exposureKey(b);
}

function describeHolder(claim: Claim): string {
  const id = `endpoint ${claim.endpointId.slice(0, 12)}`;
  return claim.label === '' ? id : `${id} (${claim.label})`;
}
