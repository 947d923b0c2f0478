import type { FirewallModel } from '../dataplane/model.js';
import type { EndpointRecord, NetworkRecord } from '../state/records.js';

/** The firewall is a pure function of the networks and endpoints that exist. */
export function buildFirewallModel(networks: NetworkRecord[], endpoints: EndpointRecord[]): FirewallModel {
  return {
    networks: networks
      .map((n) => ({ id: n.id, index: n.index, pools: [...n.pools], icc: n.icc, masquerade: n.masquerade }))
      .sort((a, b) => a.index - b.index),
    endpoints: endpoints
      .map((e) => ({
        id: e.id,
        networkId: e.networkId,
        hostIf: e.hostIf,
        address: e.address,
        exposures: e.exposures.map(({ resolved: x }) => ({
          ...(x.hostIp !== undefined ? { hostIp: x.hostIp } : {}),
          hostPort: x.hostPort,
          hostPortEnd: x.hostPortEnd,
          containerPort: x.containerPort,
          containerPortEnd: x.containerPortEnd,
          proto: x.proto,
        })),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
}
