import type { FirewallEndpoint, FirewallModel, ResolvedExposure } from '../dataplane/model.js';
import { allowsAnySource, effectiveSources } from '../expose/sources.js';
import type { Exposure } from '../expose/types.js';
import type { EndpointRecord, NetworkRecord } from '../state/records.js';

/** The firewall is a pure function of the networks and endpoints that exist. */
export function buildFirewallModel(networks: NetworkRecord[], endpoints: EndpointRecord[]): FirewallModel {
  const exposeFrom = new Map(networks.map((n) => [n.id, n.exposeFrom]));
  const siblings = siblingAddresses(endpoints);
  return {
    networks: networks
      .map((n) => ({ id: n.id, index: n.index, pools: [...n.pools], pools6: [...(n.pools6 ?? [])], icc: n.icc, masquerade: n.masquerade }))
      .sort((a, b) => a.index - b.index),
    endpoints: endpoints
      .map((e): FirewallEndpoint => {
        const others = siblings.get(e.id);
        return {
          id: e.id,
          networkId: e.networkId,
          hostIf: e.hostIf,
          address: e.address,
          ...(e.address6 !== undefined ? { address6: e.address6 } : {}),
          ...(others !== undefined ? { siblings: others } : {}),
          exposures: e.exposures.map(({ resolved }) => modelExposure(resolved, exposeFrom.get(e.networkId))),
        };
      })
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
}

/**
 * For each joined endpoint that shares its container (Join's SandboxKey) with other portnet
 * endpoints, their addresses. Endpoints alone in their container are not in the map.
 */
function siblingAddresses(endpoints: EndpointRecord[]): Map<string, string[]> {
  const bySandbox = new Map<string, EndpointRecord[]>();
  for (const e of endpoints) {
    if (!e.joined || e.sandboxKey === undefined) continue;
    const group = bySandbox.get(e.sandboxKey);
    if (group) group.push(e);
    else bySandbox.set(e.sandboxKey, [e]);
  }
  const out = new Map<string, string[]>();
  for (const group of bySandbox.values()) {
    if (group.length < 2) continue;
    for (const e of group) {
      out.set(
        e.id,
        group.filter((o) => o.id !== e.id).flatMap((o) => (o.address6 === undefined ? [o.address] : [o.address, o.address6])),
      );
    }
  }
  return out;
}

/** The exposure as the firewall sees it, with its effective allowlist (expose/sources.ts). */
function modelExposure(x: Exposure, networkDefault: string[] | undefined): ResolvedExposure {
  const listed = effectiveSources(x, networkDefault)?.sources;
  // `@any` overrides a network default; for the firewall it is no allowlist at all (the fast sets).
  const sources = listed !== undefined && allowsAnySource(listed) ? undefined : listed;
  return {
    ...(x.hostIp !== undefined ? { hostIp: x.hostIp } : {}),
    ...(x.hostIface !== undefined ? { hostIface: x.hostIface } : {}),
    ...(sources !== undefined ? { sources } : {}),
    hostPort: x.hostPort,
    hostPortEnd: x.hostPortEnd,
    containerPort: x.containerPort,
    containerPortEnd: x.containerPortEnd,
    proto: x.proto,
  };
}
