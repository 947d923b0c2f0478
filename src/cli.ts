#!/usr/bin/env node
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { IprouteLinks } from './dataplane/iprouteLinks.js';
import { NftFirewall } from './dataplane/nft/apply.js';
import { buildPlugin, startPlugin } from './serve.js';
import { acquirePidLock } from './state/pidLock.js';
import { SqliteStore } from './state/sqliteStore.js';
import { socketAnswers } from './server/listen.js';

const USAGE = `usage: portnet <command> [flags]

commands:
  serve        run the plugin in the foreground (Docker's NetworkDriver + IpamDriver);
               on SIGTERM its rules stay in the kernel while networks exist, so traffic keeps flowing
  uninstall    remove every rule, route and link portnet made (state is kept); portnet must be stopped

flags (or environment):
  --socket PATH               PORTNET_SOCKET       default /run/docker/plugins/portnet.sock
  --state-dir DIR             PORTNET_STATE_DIR    default /var/lib/portnet
  --log-level LEVEL           PORTNET_LOG_LEVEL    default info
  --default-pool CIDR         PORTNET_DEFAULT_POOL default 10.214.0.0/16 (carved when --subnet is not given)
  --default-pool-prefix N     PORTNET_DEFAULT_POOL_PREFIX default 24
  --mtu N                     PORTNET_MTU          default 1500
`;

async function serve(args: string[]): Promise<void> {
  const { config } = loadConfig(args);
  const log = pino({ level: config.logLevel, base: { name: 'portnet' } });
  const store = SqliteStore.open(config.stateDir);
  const release = acquirePidLock(config.stateDir);
  const links = new IprouteLinks();
  const firewall = new NftFirewall();
  const plugin = await buildPlugin(config, { store, links, firewall, log });
  const server = await startPlugin(plugin, config, links, log);
  const stop = (signal: string) => {
    server.close();
    server.closeAllConnections();
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

async function uninstall(args: string[]): Promise<void> {
  const { config } = loadConfig(args);
  if (await socketAnswers(config.socketPath)) {
    throw new Error(`portnet is still serving ${config.socketPath}; stop it first (it would put its rules back)`);
  }
  const links = new IprouteLinks();
  await new NftFirewall().remove();
  for (const route of await links.listRoutes()) {
    const m = /^unreachable (\S+)/.exec(route);
    if (m?.[1]) await links.removePoolRoute(m[1]);
  }
  for (const link of await links.listEndpointLinks()) await links.deleteEndpointLink(link);
  process.stdout.write('portnet rules, routes and links removed; state kept in ' + config.stateDir + '\n');
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
      return serve(args);
    case 'uninstall':
      return uninstall(args);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new ConfigError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`portnet: ${(err as Error).message ?? String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
