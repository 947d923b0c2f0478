import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../../../src/config.js';
import { FakeLinks } from '../../../src/dataplane/fakeLinks.js';
import { FakeFirewall } from '../../../src/dataplane/fakeFirewall.js';
import { buildPlugin } from '../../../src/serve.js';
import { MemoryStore } from '../../../src/state/memoryStore.js';

/** A plugin on fakes of the kernel and the store, exactly as `serve` wires the real one. */
export async function fakePlugin(overrides: Partial<Config> = {}, store = new MemoryStore()) {
  const links = new FakeLinks();
  const firewall = new FakeFirewall();
  const config: Config = { ...DEFAULTS, defaultPool: '198.18.128.0/17', ...overrides };
  const plugin = await buildPlugin(config, { store, links, firewall, log: pino({ level: 'silent' }) });
  return { ...plugin, store, links, firewall, config };
}

export interface TraceCall {
  path: string;
  body: Record<string, unknown>;
}

/** The requests Docker 20.10 sent on this machine (a copy of shared/docker-remote-driver-trace.txt in test/fixtures), in order. */
export function loadTrace(): TraceCall[] {
  const file = fileURLToPath(new URL('../../fixtures/docker-20.10-trace.txt', import.meta.url));
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('/'))
    .map((line) => {
      const space = line.indexOf(' ');
      return { path: line.slice(0, space), body: JSON.parse(line.slice(space + 1)) as Record<string, unknown> };
    });
}
