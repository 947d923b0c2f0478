import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../config.js';
import { IprouteLinks } from '../dataplane/iprouteLinks.js';
import { NftFirewall } from '../dataplane/nft/apply.js';
import { socketAnswers } from '../server/listen.js';

const PURGE = '--purge-state';

/**
 * `portnet uninstall [--purge-state]`: removes every rule, route and link portnet made. The state
 * is kept unless asked, because it is the only record of which addresses running containers hold.
 */
export async function uninstallCommand(args: string[]): Promise<void> {
  const purge = args.includes(PURGE);
  const { config } = loadConfig(args.filter((a) => a !== PURGE));
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
  if (purge) {
    for (const file of ['state.db', 'state.db-wal', 'state.db-shm']) await rm(join(config.stateDir, file), { force: true });
    process.stdout.write(`portnet rules, routes and links removed; state removed from ${config.stateDir}\n`);
  } else {
    process.stdout.write(`portnet rules, routes and links removed; state kept in ${config.stateDir}\n`);
  }
}
