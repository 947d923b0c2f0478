import { findConflict, overlap, sameExposure, type Claim } from './conflicts.js';
import { formatExposure } from './format.js';
import { ExposeError, hostPortToPick, type Exposure } from './types.js';

/** Docker's classic range for `-p 80` and `-P`. */
export const EPHEMERAL_PORTS = { first: 49153, last: 65535 } as const;

/** One requested exposure with the host port it was given (the same object when nothing was to pick). */
export interface Resolved {
  requested: Exposure;
  resolved: Exposure;
}

/**
 * Gives every exposure whose host port is still open (ephemeral, or one port out of a host range)
 * a concrete, unclaimed port, and checks the whole set against other endpoints' claims. A request
 * resolved before (`previous`, e.g. at CreateEndpoint, then repeated in Join) keeps its port, so
 * the mapping a user saw never changes under them.
 */
export function resolveExposures(
  endpointId: string,
  requested: readonly Exposure[],
  claims: readonly Claim[],
  previous: readonly Resolved[] = [],
): Resolved[] {
  const out: Resolved[] = [];
  const mine = (): Claim[] => out.map((r) => ({ endpointId, label: 'this endpoint', exposure: r.resolved }));
  for (const want of requested) {
    if (!hostPortToPick(want)) {
      out.push({ requested: want, resolved: want });
      continue;
    }
    const kept = previous.find((p) => sameExposure(p.requested, want) && !out.some((o) => o.resolved === p.resolved));
    if (kept && !clashes(kept.resolved, [...claims, ...mine()], endpointId)) {
      out.push({ requested: want, resolved: kept.resolved });
      continue;
    }
    const [first, last] = want.hostPort === 0 ? [EPHEMERAL_PORTS.first, EPHEMERAL_PORTS.last] : [want.hostPort, want.hostPortEnd];
    let picked: Exposure | undefined;
    for (let port = first; port <= last && !picked; port++) {
      const candidate: Exposure = { ...want, hostPort: port, hostPortEnd: port };
      if (!clashes(candidate, [...claims, ...mine()], endpointId)) picked = candidate;
    }
    if (!picked) throw new ExposeError(`${formatExposure(want)}: no free host port in ${first}-${last}`);
    out.push({ requested: want, resolved: picked });
  }
  const conflict = findConflict(claims, endpointId, out.map((r) => r.resolved));
  if (conflict) throw new ExposeError(conflict.message);
  return out;
}

function clashes(candidate: Exposure, claims: readonly Claim[], endpointId: string): boolean {
  return claims.some((c) => !(c.endpointId === endpointId && c.exposure === candidate) && overlap(candidate, c.exposure) !== undefined);
}
