import { mkdtempSync, readFileSync, existsSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installService, renderUnit, systemdQuote, uninstallService, UNIT_NAME } from '../../../src/cli/installService.js';
import { ConfigError } from '../../../src/config.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'portnet-unit-'));
  dirs.push(d);
  return d;
}

const spec = { node: '/usr/bin/node', cli: '/opt/portnet/dist/cli.js' };

describe('systemd unit', () => {
  it('starts portnet before Docker (so it stops after it), at boot, with the serve flags given', () => {
    const text = renderUnit({ ...spec, serveArgs: ['--state-dir', '/var/lib/portnet', '--metrics-port', '9464'] });
    const lines = text.split('\n');
    expect(lines).toContain('[Unit]');
    expect(lines).toContain('Before=docker.service');
    expect(lines).toContain('[Install]');
    expect(lines).toContain('WantedBy=multi-user.target');
    expect(lines).toContain('ExecStart=/usr/bin/node /opt/portnet/dist/cli.js serve --state-dir /var/lib/portnet --metrics-port 9464');
    expect(lines).toContain('KillSignal=SIGTERM');
    expect(lines).toContain('Restart=on-failure');
    // Sections in order, each key once.
    expect(lines.filter((l) => l.startsWith('[')).map((l) => l)).toEqual(['[Unit]', '[Service]', '[Install]']);
  });

  it('quotes what systemd would split or expand', () => {
    expect(systemdQuote('/var/lib/portnet')).toBe('/var/lib/portnet');
    expect(systemdQuote('/srv/my state')).toBe('"/srv/my state"');
    expect(systemdQuote('100%$HOME"\\')).toBe('"100%%$$HOME\\"\\\\"');
    expect(() => systemdQuote('a\nExecStartPre=/bin/evil')).toThrow(ConfigError);
  });

  it('install-service writes the unit into the unit directory and runs no systemctl without systemd', async () => {
    const dir = tmp();
    const ran: string[][] = [];
    const out: string[] = [];
    const path = await installService(
      ['--unit-dir', dir, '--state-dir', '/srv/portnet', '--log-level', 'debug'],
      { systemdRunning: () => false, run: async (p, a) => (ran.push([p, ...a]), ''), out: (t) => out.push(t) },
      spec,
    );
    expect(path).toBe(join(dir, UNIT_NAME));
    const text = readFileSync(path, 'utf8');
    expect(text).toBe(renderUnit({ ...spec, serveArgs: ['--state-dir', '/srv/portnet', '--log-level', 'debug'] }));
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(ran).toEqual([]);
    expect(out.join('')).toContain('systemd is not running here');
  });

  it('with systemd it reloads and enables; uninstall-service disables, removes and reloads', async () => {
    const dir = tmp();
    const ran: string[][] = [];
    const deps = { systemdRunning: () => true, run: async (p: string, a: string[]) => (ran.push([p, ...a]), ''), out: () => {} };
    await installService(['--unit-dir', dir], deps, spec);
    expect(ran).toEqual([
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', 'portnet.service'],
    ]);
    ran.length = 0;
    await uninstallService(['--unit-dir', dir], deps);
    expect(existsSync(join(dir, UNIT_NAME))).toBe(false);
    expect(ran).toEqual([
      ['systemctl', 'disable', '--now', 'portnet.service'],
      ['systemctl', 'daemon-reload'],
    ]);
  });

  it('--uninstall-service on install-service removes it too; a missing unit is fine', async () => {
    const dir = tmp();
    const deps = { systemdRunning: () => false, out: () => {} };
    await installService(['--unit-dir', dir], deps, spec);
    await installService(['--unit-dir', dir, '--uninstall-service'], deps, spec);
    expect(existsSync(join(dir, UNIT_NAME))).toBe(false);
    await uninstallService(['--unit-dir', dir], deps);
  });

  it('refuses serve flags that serve would refuse, before writing anything', async () => {
    const dir = tmp();
    const deps = { systemdRunning: () => false, out: () => {} };
    await expect(installService(['--unit-dir', dir, '--mtu', '12'], deps, spec)).rejects.toThrow('--mtu "12" must be a whole number from 576 to 65535');
    await expect(installService(['--unit-dir', dir, '--frobnicate'], deps, spec)).rejects.toThrow(ConfigError);
    await expect(installService(['--unit-dir', dir, '--metrics-port', '0'], deps, spec)).rejects.toThrow('--metrics-port "0"');
    expect(existsSync(join(dir, UNIT_NAME))).toBe(false);
  });
});
