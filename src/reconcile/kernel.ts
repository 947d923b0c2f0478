import type { Logger } from 'pino';
import { parsePortnetRoute, type Links, type SandboxSide } from '../dataplane/links.js';
import { formatCidr, formatIp, parseCidr, parseIp } from '../ipam/address.js';
import { gatewaysOf } from '../network/gateway.js';
import { endpointLinkSpec, type NetworkDriver } from '../network/driver.js';
import type { EndpointRecord } from '../state/records.js';
import type { State } from '../state/state.js';
import { RepairLog, type Repair } from './repair.js';

export interface KernelReconcileDeps {
  state: State;
  links: Links;
  driver: NetworkDriver;
  log: Logger;
  mtu: number;
  /** Whether portnet's nft table is in the kernel now (only to say so in the log; the table is replaced either way). */
  firewallPresent?: () => Promise<boolean>;
}

/** `ip` prints IPv6 as inet_ntop does; state holds RFC 5952 text. Compare them canonical. */
function canonical(text: string, parse: 'ip' | 'cidr'): string {
  try {
    return parse === 'ip' ? formatIp(parseIp(text, 'route')) : formatCidr(parseCidr(text, 'route'));
  } catch {
    return text;
  }
}

/** The container side as Docker configured it after Join. */
function sandboxSide(e: EndpointRecord, sandbox: string): SandboxSide {
  return {
    sandbox,
    prefix: e.prefix,
    gateway: gatewaysOf(e.gatewaySlot).v4,
    ...(e.address6 !== undefined ? { prefix6: e.prefix6 ?? 128, gateway6: gatewaysOf(e.gatewaySlot).v6 } : {}),
  };
}

const addressesOf = (e: EndpointRecord) => (e.address6 === undefined ? e.address : `${e.address}, ${e.address6}`);

/**
 * Makes the kernel match portnet's state, before portnet serves Docker (nothing else runs yet):
 *
 * - every network's `unreachable` pool route (IPv4 and IPv6) is there, and no pool route of a
 *   network that is gone; IPv6 forwarding is on when an endpoint has an IPv6 address;
 * - every endpoint's veth has its /32 route (and /128 and `local ::1` routes for IPv6); a pn* link
 *   or an endpoint route no endpoint owns is removed
 *   (a crash between making a link and committing it, or a DeleteEndpoint Docker never finished);
 * - an endpoint that Join attached to a container whose namespace still exists, but whose veth is
 *   gone (someone deleted it; a `portnet uninstall` while containers ran), gets its veth back,
 *   moved into the container and configured as Docker did;
 * - the nft table is replaced as a whole from the state, in one transaction (also when it was
 *   deleted or flushed).
 *
 * Links of endpoints that exist in the state are never removed here: between Join's link and its
 * commit, and between Leave and DeleteEndpoint, an endpoint owns a link while `joined` is false.
 * Whether Docker still knows an endpoint is decided later, by reconcileWithDocker.
 */
export async function reconcileKernel(deps: KernelReconcileDeps): Promise<Repair[]> {
  const { state, links, driver, mtu } = deps;
  const found = new RepairLog(deps.log);

  // Pool routes.
  const wantedPools = new Set(state.networks().flatMap((n) => [...n.pools, ...(n.pools6 ?? [])]));
  const routes = (await links.listRoutes()).map(parsePortnetRoute);
  const havePools = new Set(routes.flatMap((r) => (r.kind === 'pool' ? [canonical(r.cidr, 'cidr')] : [])));
  for (const cidr of wantedPools) {
    if (!havePools.has(cidr)) found.add('pool-route-missing', `put back the unreachable route of pool ${cidr}`, { pool: cidr });
    await links.addPoolRoute(cidr); // `route replace`: a no-op when it is there
  }
  for (const cidr of havePools) {
    if (wantedPools.has(cidr)) continue;
    await links.removePoolRoute(cidr);
    found.add('orphan-pool-route', `removed the unreachable route of pool ${cidr}: no portnet network has it`, { pool: cidr });
  }

  // A reboot turns IPv6 forwarding off again. Failing here must not stop the IPv4 repairs below.
  if (state.endpoints().some((e) => e.address6 !== undefined)) {
    await driver.enableIpv6Forwarding().catch((err: unknown) => deps.log.error({ err }, 'could not turn on IPv6 forwarding: IPv6 endpoints are not routed'));
  }

  // Endpoint links.
  const linkNames = new Set(await links.listEndpointLinks());
  const byIf = new Map(state.endpoints().map((e) => [e.hostIf, e]));
  for (const name of linkNames) {
    if (byIf.has(name)) continue;
    await links.deleteEndpointLink(name);
    linkNames.delete(name);
    found.add('orphan-link', `removed link ${name}: no endpoint in portnet's state owns it`, { link: name });
  }
  const endpointRoutes = routes.flatMap((r) => (r.kind === 'endpoint' ? [{ ...r, address: canonical(r.address, 'ip') }] : []));
  const loopbackRoutes = new Set(routes.flatMap((r) => (r.kind === 'loopback' ? [r.dev] : [])));
  const hasRoute = (address: string, dev: string) => endpointRoutes.some((r) => r.address === address && r.dev === dev);
  for (const e of state.endpoints()) {
    const detail = {
      endpoint: e.id.slice(0, 12),
      network: e.networkId.slice(0, 12),
      address: e.address,
      ...(e.address6 !== undefined ? { address6: e.address6 } : {}),
      link: e.hostIf,
    };
    if (linkNames.has(e.hostIf)) {
      const missing = [
        ...(hasRoute(e.address, e.hostIf) ? [] : [`the /32 route of ${e.address}`]),
        ...(e.address6 === undefined || hasRoute(e.address6, e.hostIf) ? [] : [`the /128 route of ${e.address6}`]),
        ...(e.address6 === undefined || loopbackRoutes.has(e.hostIf) ? [] : ['the local ::1 route']),
      ];
      if (missing.length > 0) {
        await links.repairEndpointLink(endpointLinkSpec(e, mtu));
        found.add('endpoint-route-missing', `put back ${missing.join(' and ')} to ${e.hostIf}`, detail);
      } else if (e.address6 === undefined && loopbackRoutes.has(e.hostIf)) {
        // IPv6 on an IPv4-only link: the repair turns IPv6 off there, which takes the route along.
        await links.repairEndpointLink(endpointLinkSpec(e, mtu));
        found.add('orphan-endpoint-route', `removed the local ::1 route of ${e.hostIf}: its endpoint has no IPv6 address`, detail);
      }
      continue;
    }
    if (!e.joined) continue; // Join makes the link; a record between Leave and DeleteEndpoint may have lost it
    if (e.sandboxKey && (await links.sandboxExists(e.sandboxKey))) {
      try {
        const inside = await links.restoreEndpointLink(endpointLinkSpec(e, mtu), sandboxSide(e, e.sandboxKey));
        linkNames.add(e.hostIf);
        found.add('veth-restored', `re-created the veth of ${addressesOf(e)} (${e.hostIf}) and moved it into its container as ${inside}`, {
          ...detail,
          sandbox: e.sandboxKey,
          inside,
        });
      } catch (err) {
        found.add(
          'veth-lost',
          `the veth of ${addressesOf(e)} (${e.hostIf}) is gone and could not be re-created (${(err as Error).message}); restart the container`,
          { ...detail, sandbox: e.sandboxKey },
          false,
        );
      }
    } else {
      // The container's namespace is gone too: it stopped while portnet was down, or the host
      // rebooted. Docker either sends DeleteEndpoint, or no longer knows it (reconcileWithDocker).
      found.add('veth-lost', `the veth of ${addressesOf(e)} (${e.hostIf}) and its container's namespace are gone; waiting for Docker to remove the endpoint`, detail, false);
    }
  }
  const owned = new Set(
    state
      .endpoints()
      .filter((e) => linkNames.has(e.hostIf))
      .flatMap((e) => [`${e.address} ${e.hostIf}`, ...(e.address6 !== undefined ? [`${e.address6} ${e.hostIf}`] : [])]),
  );
  for (const r of endpointRoutes) {
    // Routes through a link that was removed above went with it.
    if (owned.has(`${r.address} ${r.dev}`) || !linkNames.has(r.dev)) continue;
    await links.removeEndpointRoute(r.address, r.dev);
    found.add('orphan-endpoint-route', `removed route ${r.text}: no endpoint has that address on that link`, { route: r.text });
  }
  for (const r of routes) {
    if (r.kind === 'other') found.add('unknown-route', `left route "${r.text}" alone: it carries portnet's protocol number but is not one portnet makes`, { route: r.text }, false);
  }

  // The firewall: one atomic replacement from the state.
  if (deps.firewallPresent && state.networks().length > 0 && !(await deps.firewallPresent())) {
    found.add('firewall-missing', "portnet's nft table was missing (deleted or flushed); put back from the state", {
      networks: state.networks().length,
      endpoints: state.endpoints().length,
    });
  }
  await driver.restoreFirewall();
  deps.log.info({ repairs: found.repairs.length, networks: state.networks().length, endpoints: state.endpoints().length }, 'kernel reconciled with the state');
  return found.repairs;
}
