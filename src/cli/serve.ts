import type { Server } from 'node:http';
import { loadConfig } from '../config.js';
import { IprouteLinks } from '../dataplane/iprouteLinks.js';
import { ConntrackCli } from '../dataplane/conntrack.js';
import { NftFirewall } from '../dataplane/nft/apply.js';
import { dockerodeSource } from '../docker/names.js';
import { createLogger } from '../logging.js';
import { Metrics } from '../metrics/metrics.js';
import { listenMetrics } from '../metrics/server.js';
import { buildPlugin, startPlugin } from '../serve.js';
import { acquirePidLock } from '../state/pidLock.js';
import { SqliteStore } from '../state/sqliteStore.js';
import { splitServeExtras } from './args.js';

/** `portnet serve`: the plugin in the foreground until SIGTERM or SIGINT. */
export async function serveCommand(args: string[]): Promise<void> {
  const { extras, rest } = splitServeExtras(args);
  const { config } = loadConfig(rest);
  const log = createLogger({ level: config.logLevel });
  const store = SqliteStore.open(config.stateDir);
  const release = acquirePidLock(config.stateDir);
  const links = new IprouteLinks('ip', 'nsenter', config.sysctlNetDir);
  const firewallLog = log.child({ part: 'firewall' });
  const firewall = new NftFirewall({ conntrack: new ConntrackCli({ logger: firewallLog }), logger: firewallLog });
  const metrics = new Metrics();
  // First, so that a port already in use fails the start before the kernel is touched.
  let metricsServer: Server | undefined;
  if (extras.metricsPort !== undefined) {
    metricsServer = await listenMetrics(metrics, extras.metricsPort);
    log.info({ metrics: `http://127.0.0.1:${extras.metricsPort}/metrics` }, 'metrics served on localhost');
  }
  const docker = await dockerodeSource();
  const plugin = await buildPlugin(config, { store, links, firewall, log, metrics, docker });
  const server = await startPlugin(plugin, config, links, log);
  // Only once Docker can call us: learning names never blocks or precedes serving.
  plugin.names.start();
  const stop = (signal: string) => {
    server.close();
    server.closeAllConnections();
    metricsServer?.close();
    plugin.names.stop();
    // Let a request that is being handled finish its commit before the database closes.
    void plugin.lock.run(async () => {
      if (plugin.state.networks().length === 0) {
        // Nothing left to protect: leave the host as it was before portnet.
        await firewall.remove().catch((err: unknown) => log.error({ err }, 'could not remove the firewall'));
        log.info({ signal }, 'stopped; no networks, so rules removed');
      } else {
        // Containers are still attached: their rules stay, so traffic flows and the default deny
        // holds while portnet is down (removing them could open the host to its containers).
        log.info({ signal, networks: plugin.state.networks().length }, 'stopped; rules stay in the kernel so traffic keeps flowing');
      }
      await store.close();
      release();
      process.exit(0);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
