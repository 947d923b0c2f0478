import { EXPOSE_OPTION, parseExpose } from '../expose/grammar.js';
import { parsePortmap, PORTMAP_OPTION } from '../expose/portmap.js';
import { resolveExposures, type Resolved } from '../expose/resolve.js';
import type { Claim } from '../expose/conflicts.js';
import type { Exposure } from '../expose/types.js';
import type { EndpointRecord } from '../state/records.js';

/** The com.example.expose items of an endpoint's driver options (keys already lower-cased). */
export function exposeOption(options: Record<string, string>): Exposure[] {
  const value = options[EXPOSE_OPTION];
  return value === undefined ? [] : parseExpose(value);
}

/** Docker's -p/-P list when these options carry one (undefined when the key is absent). */
export function portmapOption(options: Record<string, unknown>): Exposure[] | undefined {
  return PORTMAP_OPTION in options ? parsePortmap(options[PORTMAP_OPTION]) : undefined;
}

/** Host ports held by every endpoint but `endpointId`. */
export function claimsOfOthers(endpoints: readonly EndpointRecord[], endpointId: string): Claim[] {
  return endpoints
    .filter((e) => e.id !== endpointId)
    .flatMap((e) => e.exposures.map((r) => ({ endpointId: e.id, label: '', exposure: r.resolved })));
}

/**
 * The endpoint's exposures when Docker (re)states its portmap: the option's items stay, the
 * published ones are replaced by `portmap`, and ports picked before are kept.
 */
export function settleExposures(
  endpointId: string,
  option: Exposure[],
  portmap: Exposure[],
  endpoints: readonly EndpointRecord[],
  previous: readonly Resolved[] = [],
): Resolved[] {
  return resolveExposures(endpointId, [...option, ...portmap], claimsOfOthers(endpoints, endpointId), previous);
}
