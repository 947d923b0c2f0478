import { parseArgs } from 'node:util';

/** Everything the plugin can be told, from flags first, then environment, then defaults. */
export interface Config {
  socketPath: string;
  stateDir: string;
  logLevel: string;
  /** Range carved into per-network subnets when `docker network create` gives no --subnet. */
  defaultPool: string;
  defaultPoolPrefix: number;
  /** MTU of both ends of every endpoint veth. */
  mtu: number;
  /**
   * Where the host's /proc/sys/net is writable. A managed plugin gets /proc/sys read-only and
   * Docker refuses mounts inside /proc, so its config.json binds the tree elsewhere.
   */
  sysctlNetDir: string;
}

export const DEFAULTS: Config = {
  socketPath: '/run/docker/plugins/portnet.sock',
  stateDir: '/var/lib/portnet',
  logLevel: 'info',
  defaultPool: '10.214.0.0/16',
  defaultPoolPrefix: 24,
  mtu: 1500,
  sysctlNetDir: '/proc/sys/net',
};

const FLAGS = {
  socket: { type: 'string', env: 'PORTNET_SOCKET', key: 'socketPath' },
  'state-dir': { type: 'string', env: 'PORTNET_STATE_DIR', key: 'stateDir' },
  'log-level': { type: 'string', env: 'PORTNET_LOG_LEVEL', key: 'logLevel' },
  'default-pool': { type: 'string', env: 'PORTNET_DEFAULT_POOL', key: 'defaultPool' },
  'default-pool-prefix': { type: 'string', env: 'PORTNET_DEFAULT_POOL_PREFIX', key: 'defaultPoolPrefix' },
  mtu: { type: 'string', env: 'PORTNET_MTU', key: 'mtu' },
  'sysctl-net-dir': { type: 'string', env: 'PORTNET_SYSCTL_NET_DIR', key: 'sysctlNetDir' },
} as const;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function integer(name: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new ConfigError(`${name} "${text}" must be a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

/** Parses `args` (the words after the subcommand) and `env` into a Config; unknown flags are errors. */
export function loadConfig(args: string[], env: NodeJS.ProcessEnv = process.env): { config: Config; rest: string[] } {
  const options = Object.fromEntries(Object.entries(FLAGS).map(([flag, f]) => [flag, { type: f.type }]));
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const raw: Record<string, string> = {};
  for (const [flag, f] of Object.entries(FLAGS)) {
    const value = (parsed.values as Record<string, string | undefined>)[flag] ?? env[f.env];
    if (value !== undefined && value !== '') raw[f.key] = value;
  }
  const config: Config = {
    socketPath: raw.socketPath ?? DEFAULTS.socketPath,
    stateDir: raw.stateDir ?? DEFAULTS.stateDir,
    logLevel: raw.logLevel ?? DEFAULTS.logLevel,
    defaultPool: raw.defaultPool ?? DEFAULTS.defaultPool,
    defaultPoolPrefix:
      raw.defaultPoolPrefix === undefined ? DEFAULTS.defaultPoolPrefix : integer('--default-pool-prefix', raw.defaultPoolPrefix, 1, 32),
    mtu: raw.mtu === undefined ? DEFAULTS.mtu : integer('--mtu', raw.mtu, 576, 65535),
    sysctlNetDir: (raw.sysctlNetDir ?? DEFAULTS.sysctlNetDir).replace(/\/+$/, ''),
  };
  if (!LOG_LEVELS.includes(config.logLevel)) {
    throw new ConfigError(`--log-level "${config.logLevel}" must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return { config, rest: parsed.positionals };
}
