import { parseArgs } from 'node:util';
import { ConfigError, DEFAULTS } from '../config.js';

/** Flags of the commands that talk to a running plugin (ls, inspect, doctor). */
export interface ClientFlags {
  socket: string;
  json: boolean;
  positionals: string[];
}

/** `--socket PATH` (or PORTNET_SOCKET, as for `serve`) and `--json`; unknown flags are errors. */
export function parseClientFlags(args: string[], env: NodeJS.ProcessEnv = process.env, maxPositionals = 0): ClientFlags {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { socket: { type: 'string' }, json: { type: 'boolean' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new ConfigError(`unexpected argument "${parsed.positionals[maxPositionals]}"`);
  }
  const socket = parsed.values.socket ?? (env.PORTNET_SOCKET || DEFAULTS.socketPath);
  return { socket, json: parsed.values.json === true, positionals: parsed.positionals };
}

/** Flags of `serve` that are not plugin configuration (config.ts): they shape how it is watched. */
export interface ServeExtras {
  /** Also serve GET /metrics on 127.0.0.1:PORT. */
  metricsPort?: number;
}

const SERVE_EXTRAS = { 'metrics-port': { env: 'PORTNET_METRICS_PORT' } } as const;

/**
 * Takes `--metrics-port N` (or PORTNET_METRICS_PORT) out of `serve`'s arguments; the rest goes to
 * loadConfig, which still refuses anything unknown.
 */
export function splitServeExtras(args: string[], env: NodeJS.ProcessEnv = process.env): { extras: ServeExtras; rest: string[] } {
  const { tokens } = parseArgs({ args, strict: false, allowPositionals: true, tokens: true, options: { 'metrics-port': { type: 'string' } } });
  const drop = new Set<number>();
  let port: string | undefined;
  for (const t of tokens) {
    if (t.kind !== 'option' || !(t.name in SERVE_EXTRAS)) continue;
    drop.add(t.index);
    if (t.inlineValue === true || t.value === undefined) {
      if (t.value === undefined) throw new ConfigError(`--${t.name} needs a value`);
    } else {
      drop.add(t.index + 1);
    }
    port = t.value;
  }
  port ??= env[SERVE_EXTRAS['metrics-port'].env] || undefined;
  const extras: ServeExtras = {};
  if (port !== undefined) {
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      throw new ConfigError(`--metrics-port "${port}" must be a port number from 1 to 65535`);
    }
    extras.metricsPort = Number(port);
  }
  return { extras, rest: args.filter((_, i) => !drop.has(i)) };
}
