#!/usr/bin/env node
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { IprouteLinks } from './dataplane/iprouteLinks.js';
import { NftFirewall } from './dataplane/nft/apply.js';
import { buildPlugin, startPlugin } from './serve.js';
import { acquirePidLock } from './state/pidLock.js';
import { SqliteStore } from './state/sqliteStore.js';

const USAGE = `usage: portnet <command> [flags]

commands:
  serve        run the plugin in the foreground (Docker's NetworkDriver + IpamDriver)
  uninstall    remove every rule and route portnet made (state is kept)

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
    log.info({ signal }, 'stopping; rules stay in the kernel so traffic keeps flowing');
    server.close();
    server.closeAllConnections();
    // Let a request that is being handled finish its commit before the database closes.
    void plugin.lock.run(async () => {
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
  const store = SqliteStore.open(config.stateDir);
  const links = new IprouteLinks();
  await new NftFirewall().remove();
  for (const route of await links.listRoutes()) {
    const m = /^unreachable (\S+)/.exec(route);
    if (m?.[1]) await links.removePoolRoute(m[1]);
  }
  for (const link of await links.listEndpointLinks()) await links.deleteEndpointLink(link);
  await store.close();
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
