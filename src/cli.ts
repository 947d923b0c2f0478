#!/usr/bin/env node
import { ConfigError } from './config.js';

const USAGE = `usage: portnet <command> [flags]

commands:
  serve              run the plugin in the foreground (Docker's NetworkDriver + IpamDriver);
                     on SIGTERM its rules stay in the kernel while networks exist, so traffic keeps flowing
  ls                 endpoints: network, container, address, what is exposed (host → container) and to whom
  inspect ID         one endpoint or network in full (ID, container or network name, or a unique prefix),
                     with the live nft elements and rules that implement it
  doctor             check the host and compare portnet's state with the kernel; exit status 1 on problems,
                     each with how to fix it
  uninstall          remove every rule, route and link portnet made; portnet must be stopped;
                     the state is kept unless --purge-state is given
  install-service    write a systemd unit that starts portnet before Docker (flags after it go to serve;
                     --unit-dir DIR, default /etc/systemd/system; --no-enable)
  uninstall-service  disable and remove that unit (also: install-service --uninstall-service)

flags of serve (or environment):
  --socket PATH               PORTNET_SOCKET       default /run/docker/plugins/portnet.sock
  --state-dir DIR             PORTNET_STATE_DIR    default /var/lib/portnet
  --log-level LEVEL           PORTNET_LOG_LEVEL    default info (PORTNET_LOG_FORMAT=json|pretty; pretty on a terminal)
  --default-pool CIDR         PORTNET_DEFAULT_POOL default 10.214.0.0/16 (carved when --subnet is not given)
  --default-pool-prefix N     PORTNET_DEFAULT_POOL_PREFIX default 24
  --mtu N                     PORTNET_MTU          default 1500
  --sysctl-net-dir DIR        PORTNET_SYSCTL_NET_DIR default /proc/sys/net (where net sysctls are written)
  --metrics-port N            PORTNET_METRICS_PORT also serve GET /metrics on 127.0.0.1:N (default: socket only)

flags of ls, inspect, doctor:
  --socket PATH               PORTNET_SOCKET       the plugin to ask
  --json                      machine-readable output
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
      await (await import('./cli/serve.js')).serveCommand(args);
      return -1; // keeps running
    case 'uninstall':
      await (await import('./cli/uninstall.js')).uninstallCommand(args);
      return 0;
    case 'ls':
      return (await import('./cli/ls.js')).lsCommand(args);
    case 'inspect':
      return (await import('./cli/inspect.js')).inspectCommand(args);
    case 'doctor':
      return (await import('./cli/doctor.js')).doctorCommand(args);
    case 'install-service':
      await (await import('./cli/installService.js')).installService(args);
      return 0;
    case 'uninstall-service':
    case '--uninstall-service':
      await (await import('./cli/installService.js')).uninstallService(args);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new ConfigError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`portnet: ${(err as Error).message ?? String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
