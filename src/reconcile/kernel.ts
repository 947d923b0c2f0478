import type { Logger } from 'pino';
import { parsePortnetRoute, type EndpointLinkSpec, type Links } from '../dataplane/links.js';
import { ROUTED_GATEWAY_V4 } from '../ipam/service.js';
import type { NetworkDriver } from '../network/driver.js';
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

function linkSpec(e: EndpointRecord, mtu: number): EndpointLinkSpec {
  return { hostIf: e.hostIf, peerIf: e.peerIf, address: e.address, mtu, ...(e.mac ? { mac: e.mac } : {}) };
}

/**
 * Makes the kernel match portnet's state, before portnet serves Docker (nothing else runs yet):
 *
 * - every network's `unreachable` pool route is there, and no pool route of a network that is gone;
 * - every endpoint's veth has its /32 route; a pn* link or a /32 route no endpoint owns is removed
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
  const wantedPools = new Set(state.networks().flatMap((n) => n.pools));
  const routes = (await links.listRoutes()).map(parsePortnetRoute);
  const havePools = new Set(routes.flatMap((r) => (r.kind === 'pool' ? [r.cidr] : [])));
  for (const cidr of wantedPools) {
    if (!havePools.has(cidr)) found.add('pool-route-missing', `put back the unreachable route of pool ${cidr}`, { pool: cidr });
    await links.addPoolRoute(cidr); // `route replace`: a no-op when it is there
  }
  for (const cidr of havePools) {
    if (wantedPools.has(cidr)) continue;
    await links.removePoolRoute(cidr);
    found.add('orphan-pool-route', `removed the unreachable route of pool ${cidr}: no portnet network has it`, { pool: cidr });
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
  const endpointRoutes = routes.flatMap((r) => (r.kind === 'endpoint' ? [r] : []));
  for (const e of state.endpoints()) {
    const detail = { endpoint: e.id.slice(0, 12), network: e.networkId.slice(0, 12), address: e.address, link: e.hostIf };
    if (linkNames.has(e.hostIf)) {
      if (!endpointRoutes.some((r) => r.address === e.address && r.dev === e.hostIf)) {
        await links.repairEndpointLink(linkSpec(e, mtu));
        found.add('endpoint-route-missing', `put back the /32 route of ${e.address} to ${e.hostIf}`, detail);
      }
      continue;
    }
    if (!e.joined) continue; // Join makes the link; a record between Leave and DeleteEndpoint may have lost it
    if (e.sandboxKey && (await links.sandboxExists(e.sandboxKey))) {
      try {
        const inside = await links.restoreEndpointLink(linkSpec(e, mtu), { sandbox: e.sandboxKey, prefix: e.prefix, gateway: ROUTED_GATEWAY_V4 });
        linkNames.add(e.hostIf);
        found.add('veth-restored', `re-created the veth of ${e.address} (${e.hostIf}) and moved it into its container as ${inside}`, {
          ...detail,
          sandbox: e.sandboxKey,
          inside,
        });
      } catch (err) {
        found.add(
          'veth-lost',
          `the veth of ${e.address} (${e.hostIf}) is gone and could not be re-created (${(err as Error).message}); restart the container`,
          { ...detail, sandbox: e.sandboxKey },
          false,
        );
      }
    } else {
      // The container's namespace is gone too: it stopped while portnet was down, or the host
      // rebooted. Docker either sends DeleteEndpoint, or no longer knows it (reconcileWithDocker).
      found.add('veth-lost', `the veth of ${e.address} (${e.hostIf}) and its container's namespace are gone; waiting for Docker to remove the endpoint`, detail, false);
    }
  }
  const owned = new Set(state.endpoints().filter((e) => linkNames.has(e.hostIf)).map((e) => `${e.address} ${e.hostIf}`));
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
