import type { Logger } from 'pino';
import type { Firewall } from '../dataplane/model.js';
import { endpointLinkNames, type EndpointLinkSpec, type Links } from '../dataplane/links.js';
import { parseAddressWithPrefix, parseCidr, cidrContains, cidrOverlaps, formatCidr, formatIp } from '../ipam/address.js';
import type { CreateEndpointReq, CreateNetworkReq, JoinReq, ProgramReq } from '../protocol/schemas.js';
import type { EndpointRecord, NetworkRecord } from '../state/records.js';
import { keys, type State } from '../state/state.js';
import { freeGatewaySlot, gatewaysOf, sandboxPeers } from './gateway.js';
import { buildFirewallModel } from './firewallModel.js';
import { endpointDriverOptions, parseNetworkOptions } from './options.js';
import { exposeOption, portmapOption, settleExposures } from './endpointExposures.js';
import { samePublishSet } from '../expose/portmap.js';

export class DriverError extends Error {
  override name = 'DriverError';
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

/** The pools of IPv4Data or IPv6Data, canonical; each must be a CIDR of that family with no host bits. */
function poolList(data: CreateNetworkReq['IPv4Data'], field: 'IPv4Data' | 'IPv6Data', family: 4 | 6): string[] {
  return data.map((d, i) => {
    if (!d.Pool) throw new DriverError(`${field}.${i}.Pool is missing`);
    const cidr = parseCidr(d.Pool, `${field}.${i}.Pool`, { strict: true });
    if (cidr.family !== family) throw new DriverError(`${field}.${i}.Pool "${d.Pool}" is not an IPv${family} CIDR`);
    return formatCidr(cidr);
  });
}

/** What the kernel needs for an endpoint's link; join and start-up repairs build it alike. */
export function endpointLinkSpec(e: EndpointRecord, mtu: number): EndpointLinkSpec {
  return {
    hostIf: e.hostIf,
    peerIf: e.peerIf,
    address: e.address,
    ...(e.address6 !== undefined ? { address6: e.address6, gateway6: gatewaysOf(e.gatewaySlot).v6 } : {}),
    mtu,
    ...(e.mac ? { mac: e.mac } : {}),
  };
}

/**
 * Docker's NetworkDriver: the endpoint lifecycle create → join → (program) → leave → delete.
 * Every change is made in the kernel first and committed to state after; if anything fails the
 * kernel is put back, so a failed request leaves no link, route or rule behind.
 */
export class NetworkDriver {
  constructor(
    private readonly state: State,
    private readonly links: Links,
    private readonly firewall: Firewall,
    private readonly log: Logger,
    private readonly mtu: number,
  ) {}

  capabilities() {
    return { Scope: 'local', ConnectivityScope: 'local' };
  }

  async createNetwork(req: CreateNetworkReq): Promise<void> {
    if (req.IPv4Data.length === 0) {
      throw new DriverError(
        `IPv4Data is empty: a portnet network needs an IPv4 pool${req.IPv6Data.length > 0 ? ' (IPv6-only networks are not supported; give an IPv4 --subnet too)' : ''}`,
      );
    }
    const opts = parseNetworkOptions(req.Options['com.docker.network.generic']);
    const pools = poolList(req.IPv4Data, 'IPv4Data', 4);
    const pools6 = poolList(req.IPv6Data, 'IPv6Data', 6);
    const existing = this.state.network(req.NetworkID);
    if (existing) {
      // Docker resends a call whose connection died (e.g. portnet was killed after its commit):
      // the same request again is answered as it was the first time.
      if (existing.pools.join(',') === pools.join(',') && (existing.pools6 ?? []).join(',') === pools6.join(',')) {
        this.log.info({ network: existing.id }, 'CreateNetwork repeated for a network that exists; nothing to do');
        return;
      }
      throw new DriverError(`network ${req.NetworkID} already exists with pools ${[...existing.pools, ...(existing.pools6 ?? [])].join(', ')}`);
    }
    // Checked before anything is made: the rollback below must never take away another network's route.
    for (const [field, list] of [['IPv4Data', pools], ['IPv6Data', pools6]] as const) {
      for (const [i, text] of list.entries()) {
        const cidr = parseCidr(text, `${field}.${i}.Pool`, { strict: true });
        for (const other of this.state.networks()) {
          const clash = [...other.pools, ...(other.pools6 ?? [])].find((p) => cidrOverlaps(cidr, parseCidr(p, 'pool', { strict: true })));
          if (clash) throw new DriverError(`${field}.${i}.Pool ${text} overlaps pool ${clash} of network ${other.id.slice(0, 12)}`);
        }
        if (list.some((p, j) => j !== i && cidrOverlaps(cidr, parseCidr(p, 'pool', { strict: true })))) {
          throw new DriverError(`${field}.${i}.Pool ${text} overlaps another pool of the same request`);
        }
      }
    }
    const network: NetworkRecord = {
      id: req.NetworkID,
      index: this.freeIndex(),
      pools,
      ...(pools6.length > 0 ? { pools6 } : {}),
      ...(opts.exposeFrom !== undefined ? { exposeFrom: opts.exposeFrom } : {}),
      options: opts.raw,
      icc: opts.icc,
      masquerade: opts.masquerade,
      internal: req.Options['com.docker.network.internal'] === true,
    };
    const added: string[] = [];
    try {
      for (const p of [...pools, ...pools6]) {
        await this.links.addPoolRoute(p);
        added.push(p);
      }
      await this.applyFirewall([...this.state.networks(), network], this.state.endpoints());
      await this.state.commit([{ put: keys.network(network.id), value: network }], [{ key: keys.network(network.id), exists: false }]);
    } catch (err) {
      for (const p of added) await this.links.removePoolRoute(p).catch(() => {});
      await this.restoreFirewall();
      throw err;
    }
    this.log.info({ network: network.id, pools, pools6, icc: network.icc, masquerade: network.masquerade }, 'network created');
  }

  async deleteNetwork(networkId: string): Promise<void> {
    const network = this.state.network(networkId);
    if (!network) {
      this.log.warn({ network: networkId }, 'DeleteNetwork for an unknown network; nothing to do');
      return;
    }
    const left = this.state.endpoints().filter((e) => e.networkId === networkId);
    if (left.length > 0) throw new DriverError(`network ${networkId} still has ${left.length} endpoint(s)`);
    await this.state.commit([{ delete: keys.network(networkId) }]);
    await this.applyFirewall(this.state.networks(), this.state.endpoints());
    for (const p of [...network.pools, ...(network.pools6 ?? [])]) await this.links.removePoolRoute(p);
    this.log.info({ network: networkId }, 'network deleted');
  }

  async createEndpoint(req: CreateEndpointReq): Promise<Record<string, never>> {
    const network = this.requireNetwork(req.NetworkID);
    const iface = req.Interface;
    if (!iface.Address) throw new DriverError('Interface.Address is empty: portnet endpoints need an IPv4 address');
    const { ip, prefix } = parseAddressWithPrefix(iface.Address, 'Interface.Address');
    if (ip.family !== 4) throw new DriverError(`Interface.Address "${iface.Address}" must be IPv4`);
    const v6 = iface.AddressIPv6 ? this.endpointAddress6(network, iface.AddressIPv6) : undefined;
    const existing = this.state.endpoint(req.EndpointID);
    if (existing) {
      // A resent call (the connection died after the commit) must not fail the container's start,
      // or Docker would roll back its address while the endpoint stays behind.
      if (
        existing.networkId === network.id &&
        existing.address === formatIp(ip) &&
        existing.prefix === prefix &&
        existing.address6 === v6?.address6 &&
        existing.prefix6 === v6?.prefix6
      ) {
        this.log.info({ endpoint: existing.id }, 'CreateEndpoint repeated for an endpoint that exists; nothing to do');
        return {};
      }
      throw new DriverError(`endpoint ${req.EndpointID} already exists with address ${existing.address} on network ${existing.networkId}`);
    }
    if (!network.pools.some((p) => cidrContains(parseCidr(p, 'pool', { strict: true }), ip))) {
      throw new DriverError(`Interface.Address "${iface.Address}" is in none of the network's pools (${network.pools.join(', ')})`);
    }
    if (iface.MacAddress && !MAC.test(iface.MacAddress)) {
      throw new DriverError(`Interface.MacAddress "${iface.MacAddress}" is not a MAC address`);
    }
    const address = formatIp(ip);
    const clash = this.state.endpoints().find((e) => e.address === address);
    if (clash) throw new DriverError(`address ${address} is already used by endpoint ${clash.id.slice(0, 12)}`);
    if (v6) {
      const clash6 = this.state.endpoints().find((e) => e.address6 === v6.address6);
      if (clash6) throw new DriverError(`address ${v6.address6} is already used by endpoint ${clash6.id.slice(0, 12)}`);
    }
    const names = endpointLinkNames(req.EndpointID);
    const taken = this.state.endpoints().find((e) => e.hostIf === names.hostIf);
    if (taken) throw new DriverError(`endpoint ${req.EndpointID} shares its link name ${names.hostIf} with endpoint ${taken.id}`);
    const options = endpointDriverOptions(req.Options);
    const endpoint: EndpointRecord = {
      id: req.EndpointID,
      networkId: network.id,
      ...names,
      address,
      prefix,
      ...(v6 ?? {}),
      ...(iface.MacAddress ? { mac: iface.MacAddress.toLowerCase() } : {}),
      options,
      exposures: settleExposures(req.EndpointID, exposeOption(options), portmapOption(req.Options) ?? [], this.state.endpoints()),
      joined: false,
    };
    await this.state.commit([{ put: keys.endpoint(endpoint.id), value: endpoint }], [{ key: keys.endpoint(endpoint.id), exists: false }]);
    this.log.info({ network: network.id, endpoint: endpoint.id, address, address6: v6?.address6 }, 'endpoint created');
    // Docker fills the interface itself; answering with an empty one avoids "driver modified interface".
    return {};
  }

  /** Interface.AddressIPv6, which must lie in one of the network's IPv6 pools. */
  private endpointAddress6(network: NetworkRecord, text: string): { address6: string; prefix6: number } {
    const pools6 = network.pools6 ?? [];
    if (pools6.length === 0) {
      throw new DriverError(
        `Interface.AddressIPv6 "${text}": network ${network.id.slice(0, 12)} has no IPv6 pool (create it with --ipv6 and an IPv6 --subnet)`,
      );
    }
    const { ip, prefix } = parseAddressWithPrefix(text, 'Interface.AddressIPv6');
    if (ip.family !== 6) throw new DriverError(`Interface.AddressIPv6 "${text}" must be IPv6`);
    if (!pools6.some((p) => cidrContains(parseCidr(p, 'pool', { strict: true }), ip))) {
      throw new DriverError(`Interface.AddressIPv6 "${text}" is in none of the network's IPv6 pools (${pools6.join(', ')})`);
    }
    return { address6: formatIp(ip), prefix6: prefix };
  }

  async join(req: JoinReq) {
    const endpoint = this.requireEndpoint(req.NetworkID, req.EndpointID);
    const gatewaySlot = freeGatewaySlot(this.state.endpoints(), req.SandboxKey, endpoint.id);
    const updated: EndpointRecord = { ...this.withPortmap(endpoint, req.Options), joined: true, sandboxKey: req.SandboxKey, gatewaySlot };
    if (endpoint.address6 !== undefined) await this.enableIpv6Forwarding();
    // A retried Join (Docker retries on a dropped connection) must not fail on the link it made.
    await this.links.deleteEndpointLink(endpoint.hostIf);
    await this.links.createEndpointLink(endpointLinkSpec(updated, this.mtu));
    try {
      await this.commitEndpoint(updated);
    } catch (err) {
      await this.links.deleteEndpointLink(endpoint.hostIf).catch(() => {});
      throw err;
    }
    this.log.info({ network: req.NetworkID, endpoint: req.EndpointID, hostIf: endpoint.hostIf }, 'endpoint joined');
    const v6 = endpoint.address6 !== undefined;
    const gw = gatewaysOf(gatewaySlot);
    return {
      InterfaceName: { SrcName: endpoint.peerIf, DstPrefix: 'eth' },
      Gateway: gw.v4,
      // The host veth's link-local address; the /128 connected route below pins it to this interface.
      ...(v6 ? { GatewayIPv6: gw.v6 } : {}),
      StaticRoutes: [
        { Destination: `${gw.v4}/32`, RouteType: 1 },
        ...(v6 ? [{ Destination: `${gw.v6}/128`, RouteType: 1 }] : []),
      ],
      DisableGatewayService: true,
    };
  }

  /**
   * IPv6 is routed only with net.ipv6.conf.all.forwarding on (no per-interface switch as in IPv4).
   * Also called at start-up, since a reboot turns it off again.
   */
  async enableIpv6Forwarding(): Promise<void> {
    const changed = await this.links.enableIpv6Forwarding();
    if (!changed) return;
    this.log.warn(
      { acceptRaSetTo2: changed.acceptRa },
      changed.acceptRa.length > 0
        ? `turned on IPv6 forwarding (net.ipv6.conf.all.forwarding=1) for the first IPv6 endpoint; set accept_ra=2 on ${changed.acceptRa.join(', ')} first so they keep their router advertisements and default routes`
        : 'turned on IPv6 forwarding (net.ipv6.conf.all.forwarding=1) for the first IPv6 endpoint',
    );
  }

  async programExternalConnectivity(req: ProgramReq): Promise<void> {
    const endpoint = this.requireEndpoint(req.NetworkID, req.EndpointID);
    const updated = this.withPortmap(endpoint, req.Options);
    if (updated !== endpoint) await this.commitEndpoint(updated);
  }

  /**
   * Docker sends -p in CreateEndpoint (older engines), Join and ProgramExternalConnectivity; the
   * latest statement wins, and a repeat of the same list changes nothing.
   */
  private withPortmap(endpoint: EndpointRecord, options: Record<string, unknown>): EndpointRecord {
    const portmap = portmapOption(options);
    if (portmap === undefined) return endpoint;
    const current = endpoint.exposures.filter((r) => r.requested.origin === 'publish').map((r) => r.requested);
    if (samePublishSet(current, portmap)) return endpoint;
    const option = endpoint.exposures.filter((r) => r.requested.origin === 'option').map((r) => r.requested);
    return { ...endpoint, exposures: settleExposures(endpoint.id, option, portmap, this.state.endpoints(), endpoint.exposures) };
  }

  async revokeExternalConnectivity(networkId: string, endpointId: string): Promise<void> {
    // Exposures belong to the endpoint, not to its gateway role: they go away with DeleteEndpoint.
    this.requireEndpoint(networkId, endpointId);
  }

  async leave(networkId: string, endpointId: string): Promise<void> {
    const endpoint = this.requireEndpoint(networkId, endpointId);
    // The veth stays until DeleteEndpoint: Docker moves the container side back to the host after Leave.
    const left: EndpointRecord = { ...endpoint, joined: false };
    // The container's other portnet veths may carry this address only while it is attached.
    if (sandboxPeers(this.state.endpoints(), endpoint.sandboxKey, endpoint.id).length > 0) await this.commitEndpoint(left);
    else await this.state.commit([{ put: keys.endpoint(endpoint.id), value: left }]);
  }

  async deleteEndpoint(networkId: string, endpointId: string): Promise<void> {
    const endpoint = this.state.endpoint(endpointId);
    if (!endpoint || endpoint.networkId !== networkId) {
      this.log.warn({ network: networkId, endpoint: endpointId }, 'DeleteEndpoint for an unknown endpoint; nothing to do');
      return;
    }
    const rest = this.state.endpoints().filter((e) => e.id !== endpointId);
    await this.applyFirewall(this.state.networks(), rest);
    await this.links.deleteEndpointLink(endpoint.hostIf);
    await this.state.commit([{ delete: keys.endpoint(endpointId) }]);
    this.log.info({ network: networkId, endpoint: endpointId }, 'endpoint deleted');
  }

  endpointOperInfo(networkId: string, endpointId: string) {
    const endpoint = this.requireEndpoint(networkId, endpointId);
    return { Value: { address: endpoint.address, ...(endpoint.address6 !== undefined ? { address6: endpoint.address6 } : {}), hostIf: endpoint.hostIf } };
  }

  /** Puts the firewall in line with the state, e.g. at start-up. */
  async restoreFirewall(): Promise<void> {
    await this.applyFirewall(this.state.networks(), this.state.endpoints());
  }

  /** Applies the firewall for the endpoint's new record, then commits it; on failure the old rules return. */
  private async commitEndpoint(updated: EndpointRecord): Promise<void> {
    const others = this.state.endpoints().filter((e) => e.id !== updated.id);
    try {
      await this.applyFirewall(this.state.networks(), [...others, updated]);
      await this.state.commit([{ put: keys.endpoint(updated.id), value: updated }]);
    } catch (err) {
      await this.restoreFirewall().catch((e: unknown) => this.log.error({ err: e }, 'could not restore the firewall'));
      throw err;
    }
  }

  private async applyFirewall(networks: NetworkRecord[], endpoints: EndpointRecord[]): Promise<void> {
    await this.firewall.apply(buildFirewallModel(networks, endpoints));
  }

  private freeIndex(): number {
    const used = new Set(this.state.networks().map((n) => n.index));
    let i = 1;
    while (used.has(i)) i++;
    return i;
  }

  private requireNetwork(networkId: string): NetworkRecord {
    const network = this.state.network(networkId);
    if (!network) throw new DriverError(`network ${networkId} is not a portnet network`);
    return network;
  }

  private requireEndpoint(networkId: string, endpointId: string): EndpointRecord {
    const endpoint = this.state.endpoint(endpointId);
    if (!endpoint || endpoint.networkId !== networkId) {
      throw new DriverError(`endpoint ${endpointId} does not exist on network ${networkId}`);
    }
    return endpoint;
  }
}
