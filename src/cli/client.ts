import http from 'node:http';
import type { FirewallModel } from '../dataplane/model.js';
import type { StateView } from '../server/introspect.js';

/** The plugin does not answer on its socket (not running, another socket, or no permission). */
export class PluginUnreachable extends Error {
  override name = 'PluginUnreachable';
}

/** GET over the plugin's Unix socket; resolves with the body text of a 200 answer. */
export function getText(socket: string, path: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: socket, path, timeout: timeoutMs, headers: { Accept: 'application/json' } }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (raw += c));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(raw);
        else reject(new Error(`GET ${path} on ${socket} answered ${res.statusCode}: ${raw.slice(0, 300)}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new PluginUnreachable(`portnet on ${socket} did not answer GET ${path} within ${timeoutMs / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof PluginUnreachable) return reject(err);
      const why =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? 'is portnet running? (--socket or PORTNET_SOCKET picks another socket)'
          : err.code === 'EACCES'
            ? 'permission denied: run as root'
            : err.message;
      reject(new PluginUnreachable(`cannot reach portnet on ${socket}: ${why}`));
    });
  });
}

export async function getJson<T>(socket: string, path: string): Promise<T> {
  const text = await getText(socket, path);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`GET ${path} on ${socket} did not answer JSON: ${text.slice(0, 200)}`);
  }
}

export function fetchState(socket: string): Promise<StateView> {
  return getJson<StateView>(socket, '/portnet/v1/state');
}

export interface FirewallView {
  table: string;
  model: FirewallModel;
}

export function fetchFirewall(socket: string): Promise<FirewallView> {
  return getJson<FirewallView>(socket, '/portnet/v1/firewall');
}
