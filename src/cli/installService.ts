import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { runCommand } from '../dataplane/exec.js';
import { splitServeExtras } from './args.js';

export const UNIT_NAME = 'portnet.service';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';

export interface UnitSpec {
  /** Absolute path of node. */
  node: string;
  /** Absolute path of dist/cli.js. */
  cli: string;
  /** Flags for `portnet serve`. */
  serveArgs: string[];
}

/**
 * One ExecStart word: systemd splits on blanks and expands `%` specifiers and `$` variables, so
 * anything beyond plain characters is double-quoted with those escaped. A line break cannot be
 * written into a unit line at all.
 */
export function systemdQuote(arg: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(arg)) throw new ConfigError(`${JSON.stringify(arg)} contains a control character and cannot go into a unit file`);
  if (/^[\w@+=:,./-]+$/.test(arg)) return arg;
  return `"${arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$')}"`;
}

/** The unit file's text. */
export function renderUnit(spec: UnitSpec): string {
  const exec = [spec.node, spec.cli, 'serve', ...spec.serveArgs].map(systemdQuote).join(' ');
  return `# Written by \`portnet install-service\`; \`portnet uninstall-service\` removes it.
[Unit]
Description=portnet: Docker network and IPAM plugin (routed endpoints, firewall-correct port exposure)
# Docker's plugin documentation: start plugins before Docker and stop them after it. Ordering
# Before= makes systemd do both, since stopping runs in reverse order.
Before=docker.service
# Firewall managers that reload their rules should have done so before portnet adds its own.
After=network.target firewalld.service

[Service]
Type=simple
ExecStart=${exec}
# On SIGTERM portnet stops serving; its rules stay in the kernel while networks exist, so
# containers keep their traffic and its default deny while it restarts.
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`;
}

export interface ServiceDeps {
  /** Whether systemd manages this machine (then systemctl is run). */
  systemdRunning?: () => boolean;
  run?: (program: string, args: string[]) => Promise<string>;
  out?: (text: string) => void;
}

function defaultSpec(serveArgs: string[]): UnitSpec {
  return { node: process.execPath, cli: fileURLToPath(new URL('../cli.js', import.meta.url)), serveArgs };
}

/** `--unit-dir DIR` and `--no-enable` out of the arguments; the rest are `serve` flags. */
function splitServiceFlags(args: string[]): { unitDir: string; enable: boolean; uninstall: boolean; rest: string[] } {
  const { tokens } = parseArgs({
    args,
    strict: false,
    allowPositionals: true,
    tokens: true,
    options: { 'unit-dir': { type: 'string' }, 'no-enable': { type: 'boolean' }, 'uninstall-service': { type: 'boolean' } },
  });
  const drop = new Set<number>();
  let unitDir = DEFAULT_UNIT_DIR;
  let enable = true;
  let uninstall = false;
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    if (t.name === 'unit-dir') {
      if (t.value === undefined) throw new ConfigError('--unit-dir needs a value');
      unitDir = t.value;
      drop.add(t.index);
      if (!t.inlineValue) drop.add(t.index + 1);
    } else if (t.name === 'no-enable') {
      enable = false;
      drop.add(t.index);
    } else if (t.name === 'uninstall-service') {
      uninstall = true;
      drop.add(t.index);
    }
  }
  return { unitDir, enable, uninstall, rest: args.filter((_, i) => !drop.has(i)) };
}

/** `portnet install-service [--unit-dir DIR] [--no-enable] [serve flags…]` */
export async function installService(args: string[], deps: ServiceDeps = {}, spec?: Partial<UnitSpec>): Promise<string> {
  const flags = splitServiceFlags(args);
  if (flags.uninstall) return uninstallService(args, deps);
  // The flags must be good ones: a unit that fails at boot is found late.
  const { rest: configArgs } = splitServeExtras(flags.rest, {});
  const { rest: positionals } = loadConfig(configArgs, {});
  if (positionals.length > 0) throw new ConfigError(`unexpected argument "${positionals[0]}"`);
  const text = renderUnit({ ...defaultSpec(flags.rest), ...spec });
  const out = deps.out ?? ((t: string) => process.stdout.write(t));
  await mkdir(flags.unitDir, { recursive: true });
  const path = join(flags.unitDir, UNIT_NAME);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, path);
  out(`wrote ${path}\n`);
  const systemd = (deps.systemdRunning ?? (() => existsSync('/run/systemd/system')))();
  const run = deps.run ?? runCommand;
  if (systemd && flags.enable) {
    await run('systemctl', ['daemon-reload']);
    await run('systemctl', ['enable', UNIT_NAME]);
    out(`enabled ${UNIT_NAME}: it starts at boot, before Docker. Start it now with: systemctl start portnet\n`);
  } else if (systemd) {
    await run('systemctl', ['daemon-reload']);
    out(`enable it with: systemctl enable --now portnet\n`);
  } else {
    out('systemd is not running here; on a systemd host: systemctl daemon-reload && systemctl enable --now portnet\n');
  }
  return path;
}

/** `portnet uninstall-service [--unit-dir DIR]`: disables and stops the service, removes the unit. */
export async function uninstallService(args: string[], deps: ServiceDeps = {}): Promise<string> {
  const flags = splitServiceFlags(args);
  if (flags.rest.length > 0) throw new ConfigError(`unexpected argument "${flags.rest[0]}"`);
  const out = deps.out ?? ((t: string) => process.stdout.write(t));
  const path = join(flags.unitDir, UNIT_NAME);
  const systemd = (deps.systemdRunning ?? (() => existsSync('/run/systemd/system')))();
  const run = deps.run ?? runCommand;
  if (systemd && existsSync(path)) await run('systemctl', ['disable', '--now', UNIT_NAME]).catch(() => '');
  await rm(path, { force: true });
  if (systemd) await run('systemctl', ['daemon-reload']);
  out(`removed ${path}\n`);
  return path;
}
