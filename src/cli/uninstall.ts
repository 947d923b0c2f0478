import { loadConfig } from '../config.js';
import { IprouteLinks } from '../dataplane/iprouteLinks.js';
import { NftFirewall } from '../dataplane/nft/apply.js';
import { socketAnswers } from '../server/listen.js';

/** `portnet uninstall`: removes every rule, route and link portnet made; its state is kept. */
export async function uninstallCommand(args: string[]): Promise<void> {
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
