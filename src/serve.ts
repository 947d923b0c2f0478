import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Firewall } from './dataplane/model.js';
import type { Links } from './dataplane/links.js';
import { IpamService } from './ipam/service.js';
import { NetworkDriver } from './network/driver.js';
import { createApp } from './server/app.js';
import { stateSnapshot } from './server/introspect.js';
import { listenOnSocket } from './server/listen.js';
import { routeTable } from './server/routes.js';
import { Mutex } from './state/mutex.js';
import { State } from './state/state.js';
import type { Store } from './state/store.js';

export interface Plugin {
  ipam: IpamService;
  driver: NetworkDriver;
  state: State;
  lock: Mutex;
  app: ReturnType<typeof createApp>;
}

/** Wires the domain to its adapters; the same function builds the real plugin and the one unit tests drive. */
export async function buildPlugin(config: Config, deps: { store: Store; links: Links; firewall: Firewall; log: Logger }): Promise<Plugin> {
  const state = await State.load(deps.store);
  const lock = new Mutex();
  const ipam = new IpamService(state, config, deps.log.child({ part: 'ipam' }));
  const driver = new NetworkDriver(state, deps.links, deps.firewall, deps.log.child({ part: 'network' }), config.mtu);
  const app = createApp(routeTable(ipam, driver), lock, deps.log, () => stateSnapshot(state));
  return { ipam, driver, state, lock, app };
}

/** Puts back in the kernel what the state says (routes and rules), then serves Docker. */
export async function startPlugin(plugin: Plugin, config: Config, links: Links, log: Logger): Promise<Server> {
  for (const n of plugin.state.networks()) for (const p of n.pools) await links.addPoolRoute(p);
  await plugin.driver.restoreFirewall();
  const server = await listenOnSocket(plugin.app, config.socketPath);
  log.info(
    { socket: config.socketPath, stateDir: config.stateDir, networks: plugin.state.networks().length, endpoints: plugin.state.endpoints().length },
    'portnet is serving',
  );
  return server;
}
