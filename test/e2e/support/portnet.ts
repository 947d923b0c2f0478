// Shared set-up for the suites that run the real plugin against the real engine.
import { existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { Cleanup } from './cleanup.js';
import { run } from './exec.js';
import { CLI, startPlugin, type PluginProcess } from './plugin.js';
import { step } from './bed.js';

/** Pools the e2e plugin carves from when a network is created without --subnet. */
export const E2E_DEFAULT_POOL = '198.18.128.0/17';

export interface PortnetState {
  pools: Array<{ id: string; pool: string; allocated: Array<{ address: string; kind: string }> }>;
  networks: Array<{ id: string; pools: string[] }>;
  endpoints: Array<{ id: string; networkId: string; address: string; hostIf: string; exposures: string[] }>;
  keys: number;
}

/** What the live plugin holds, read over its socket. */
export function pluginState(plugin: PluginProcess): Promise<PortnetState> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: plugin.socket, path: '/portnet/v1/state', timeout: 5000 }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (raw += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(raw) as PortnetState);
        } catch (err) {
          reject(new Error(`state answer is not JSON: ${raw.slice(0, 200)} (${String(err)})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('state: no answer in 5 s')));
    req.on('error', reject);
  });
}

export async function startE2ePlugin(cleanup: Cleanup): Promise<PluginProcess> {
  const plugin = await startPlugin({ args: ['--default-pool', E2E_DEFAULT_POOL], logLevel: 'debug' }, cleanup);
  // Last step after the plugin has stopped: take its rules out of the kernel, as an operator would.
  cleanup.defer('portnet uninstall', async () => {
    await plugin.kill('SIGTERM');
    await run('node', [CLI, 'uninstall', '--purge-state', '--state-dir', plugin.stateDir], { timeoutMs: 30_000 });
    if (existsSync(join(plugin.stateDir, 'state.db'))) throw new Error(`uninstall --purge-state left ${plugin.stateDir}/state.db`);
  });
  step(`plugin ${plugin.driver} serving on ${plugin.socket} (log ${plugin.logFile})`);
  return plugin;
}

/** `ip` output lines that mention portnet's links or its route protocol. */
export async function kernelLeftovers(): Promise<{ links: string[]; routes: string[] }> {
  const links = (await run('ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && /^p[nc][0-9a-f]{11}$/.test(n));
  const routes = (await run('ip', ['-4', 'route', 'show', 'proto', '91'])).stdout.split('\n').filter((l) => l.trim() !== '');
  return { links, routes };
}
