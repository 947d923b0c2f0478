import { describeAddress, formatExposure } from './format.js';
import { commonAddresses } from './hostip.js';
import { hostPortToPick, type Exposure, type Proto } from './types.js';

/** A host port range held by an endpoint. `label` describes the holder for people ("container web1"), may be "". */
export interface Claim {
  endpointId: string;
  label: string;
  exposure: Exposure;
}

/** Where two exposures meet: the first host port they share and the addresses they share (undefined = any). */
export interface Overlap {
  port: number;
  proto: Proto;
  hostIp: string | undefined;
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
 */
export function overlap(a: Exposure, b: Exposure): Overlap | undefined {
  if (a.proto !== b.proto || hostPortToPick(a) || hostPortToPick(b)) return undefined;
  const first = Math.max(a.hostPort, b.hostPort);
  if (first > Math.min(a.hostPortEnd, b.hostPortEnd)) return undefined;
  const hostIp = commonAddresses(a.hostIp, b.hostIp);
  if (hostIp === null) return undefined;
  return { port: first, proto: a.proto, hostIp };
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
        const on = claim.exposure.hostIp === where.hostIp ? '' : ` on ${describeAddress(claim.exposure.hostIp)}`;
        const message = `${describePort(where)} is already published${on} by ${describeHolder(claim)}`;
        return { ...where, exposure, holder: { claim }, message };
      }
    }
    for (const sibling of incoming.slice(0, i)) {
      const where = overlap(exposure, sibling);
      if (where) {
        const message = `${describePort(where)} is published twice: ${formatExposure(sibling)} and ${formatExposure(exposure)}`;
        return { ...where, exposure, holder: { sibling }, message };
      }
    }
  }
  return undefined;
}

/** "host port 8080/tcp on 0.0.0.0" */
export function describePort(where: Overlap): string {
  return `host port ${where.port}/${where.proto} on ${describeAddress(where.hostIp)}`;
}

/** Identity of an exposure, for sets and replay detection. */
export function exposureKey(e: Exposure): string {
  return [e.origin, e.proto, e.hostIp ?? '*', e.hostPort, e.hostPortEnd, e.containerPort, e.containerPortEnd].join(' ');
}

export function sameExposure(a: Exposure, b: Exposure): boolean {
  return exposureKey(a) === exposureKey(b);
}

function describeHolder(claim: Claim): string {
  const id = `endpoint ${claim.endpointId.slice(0, 12)}`;
  return claim.label === '' ? id : `${id} (${claim.label})`;
}
