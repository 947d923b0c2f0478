import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { Firewall } from './dataplane/model.js';
import type { Links } from './dataplane/links.js';
import { DEFAULT_TABLE } from './dataplane/nft/render.js';
import { ContainerNames, type DockerNameSource } from './docker/names.js';
import { Metrics } from './metrics/metrics.js';
import { buildFirewallModel } from './network/firewallModel.js';
import { DockerodeView, type DockerView } from './docker/view.js';
import { IpamService } from './ipam/service.js';
import { NetworkDriver } from './network/driver.js';
import { DockerReconciler, snapshotState } from './reconcile/docker.js';
import { reconcileKernel } from './reconcile/kernel.js';
import { nftTablePresent } from './reconcile/nftProbe.js';
import type { Repair } from './reconcile/repair.js';
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
  metrics: Metrics;
  /** Container names learnt from Docker in the background; start() it once serving. */
  names: ContainerNames;
  /** Set by startPlugin: the background reconciliation with Docker (undefined result: Docker could not be read). */
  dockerReconciled?: Promise<Repair[] | undefined>;
  /** Set by startPlugin; runs again when Docker (re)activates the plugin (a dockerd restarted). */
  reconciler?: DockerReconciler;
}

/** Wires the domain to its adapters; the same function builds the real plugin and the one unit tests drive. */
export async function buildPlugin(
  config: Config,
  deps: { store: Store; links: Links; firewall: Firewall; log: Logger; metrics?: Metrics; docker?: DockerNameSource },
): Promise<Plugin> {
  const state = await State.load(deps.store);
  const lock = new Mutex();
  const ipam = new IpamService(state, config, deps.log.child({ part: 'ipam' }));
  const driver = new NetworkDriver(state, deps.links, deps.firewall, deps.log.child({ part: 'network' }), config.mtu);
  const metrics = (deps.metrics ?? new Metrics({ defaultMetrics: false })).watchState(state);
  const names = new ContainerNames(state, deps.docker, deps.log.child({ part: 'docker' }));
  // Docker activates a plugin once per dockerd lifetime: after start-up, a new dockerd (one that may
  // have crashed and forgotten containers) is worth a reconciliation. Only scheduled, never awaited.
  const plugin: { reconciler?: DockerReconciler } = {};
  const activated = (by: string) => void plugin.reconciler?.request(`Docker called ${by}`);
  const app = createApp(routeTable(ipam, driver, { activated }), lock, deps.log, () => stateSnapshot(state, names), {
    metrics,
    names,
    firewall: () => ({ table: DEFAULT_TABLE, model: buildFirewallModel(state.networks(), state.endpoints()) }),
  });
  return Object.assign(plugin, { ipam, driver, state, lock, app, metrics, names });
}

export interface StartOptions {
  /** How portnet reads Docker (default: dockerode on DOCKER_HOST or /var/run/docker.sock). */
  docker?: DockerView;
  /** Delay before Docker is read (default PORTNET_RECONCILE_SETTLE_MS or 20 s; see reconcileWithDocker). */
  settleMs?: number;
}

function envMs(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  if (!/^\d{1,7}$/.test(text)) throw new Error(`${name} "${text}" must be a whole number of milliseconds`);
  return Number(text);
}

/**
 * Makes the kernel match the state (routes, links, rules; see reconcileKernel), then serves Docker.
 * Once serving, reconciles with Docker in the background: Docker may be starting and waiting for
 * this socket, so it is never waited for before serving.
 */
export async function startPlugin(plugin: Plugin, config: Config, links: Links, log: Logger, options: StartOptions = {}): Promise<Server> {
  const settleMs = options.settleMs ?? envMs('PORTNET_RECONCILE_SETTLE_MS', 20_000);
  const snapshot = snapshotState(plugin.state);
  const reconcileLog = log.child({ part: 'reconcile' });
  await plugin.lock.run(() =>
    reconcileKernel({ state: plugin.state, links, driver: plugin.driver, log: reconcileLog, mtu: config.mtu, firewallPresent: () => nftTablePresent() }),
  );
  const server = await listenOnSocket(plugin.app, config.socketPath);
  log.info(
    { socket: config.socketPath, stateDir: config.stateDir, networks: plugin.state.networks().length, endpoints: plugin.state.endpoints().length },
    'portnet is serving',
  );
  const docker = options.docker ?? new DockerodeView();
  plugin.reconciler = new DockerReconciler({ state: plugin.state, driver: plugin.driver, ipam: plugin.ipam, links, lock: plugin.lock, docker, log: reconcileLog, settleMs });
  plugin.dockerReconciled = plugin.reconciler.request('start-up', snapshot);
  return server;
}
