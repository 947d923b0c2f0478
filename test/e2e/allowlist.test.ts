// Source allowlists end to end (issue 7): `@SOURCE` on an exposure item and the network default
// `com.example.expose.from`. Two outside hosts play two machines on the LAN: A is allowed, B is not.
// Both paths are checked (DNAT through the host address, and directly on the container address for an
// all-address exposure), and the host's own processes are never filtered.
//
// Traffic only goes to loopback, to the containers made here, to the outside hosts and to the host side
// of their veths.
import net from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CommandError,
  createNetwork,
  createOutsideHost,
  E2E_DRIVER,
  ensureTestbed,
  expectDropped,
  expectNotOpen,
  EXPOSE,
  EXPOSE_FROM,
  hostnameVia,
  inspectContainer,
  portnetLs,
  portnetNetwork,
  runRefused,
  scoped,
  shut,
  startE2ePlugin,
  step,
  uniqueName,
  useCleanup,
  web,
  type OutsideHost,
  type PluginProcess,
} from './support/index.js';

const cleanup = useCleanup('all');
let plugin: PluginProcess;
let a: OutsideHost;
let b: OutsideHost;
const t0 = Date.now();

beforeAll(async () => {
  await ensureTestbed();
  plugin = await startE2ePlugin(cleanup);
  a = await createOutsideHost('alwa', {}, cleanup);
  b = await createOutsideHost('alwb', {}, cleanup);
  step(`outside A ${a.address} (host side ${a.hostAddress}), outside B ${b.address} (host side ${b.hostAddress})`);
});

/** The exposures of the container with `address` in `portnet ls --json`. */
async function lsExposures(address: string) {
  const row = (await portnetLs(plugin)).find((r) => r.address === address);
  if (!row) throw new Error(`no row for ${address} in portnet ls --json`);
  return row.exposures;
}

describe('source allowlists', () => {
  it('1. expose=8080:80@A/32: A reaches through DNAT and directly, B on neither path, the host always', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'al1', '198.18.80.0/24');
      const c = await web(local, n.name, { expose: `8080:80@${a.address}/32`, ports: [80, 81] });
      expect(await hostnameVia(a, a.hostAddress, 8080)).toBe(c.hostname);
      expect(await hostnameVia(a, c.address, 80)).toBe(c.hostname);

      const [viaHost, direct] = await Promise.all([shut(b, b.hostAddress, 8080), shut(b, c.address, 80)]);
      expectDropped(viaHost, 'B -> its host address :8080');
      expectDropped(direct, 'B -> container :80');
      // The allowlist does not open other ports to A.
      expectDropped(await shut(a, c.address, 81), 'A -> container :81 (unexposed)');

      // Output path: the host's own processes are never filtered.
      expect(await hostnameVia('host', '127.0.0.1', 8080)).toBe(c.hostname);
      expect(await hostnameVia('host', b.hostAddress, 8080)).toBe(c.hostname);

      const x = await lsExposures(c.address);
      expect(x.map((e) => [e.sources, e.sourcesFrom]), JSON.stringify(x)).toEqual([[[`${a.address}/32`], 'item']]);
    }));

  it('2. a refused client is dropped before NAT and never falls through to a host socket on that port', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'al2', '198.18.81.0/24');
      const c = await web(local, n.name, { expose: `8082:80@${a.address}` });
      // A host server on B's host-side address and the exposed port: without the pre-NAT drop B would
      // reach it (DNAT skipped for B, the packet is then simply local).
      const server = net.createServer((s) => s.end('host-socket\n'));
      await new Promise<void>((r, j) => server.once('error', j).listen(8082, b.hostAddress, () => r()));
      local.defer('close the host server', () => new Promise<void>((r) => server.close(() => r())));
      expectDropped(await shut(b, b.hostAddress, 8082), 'B -> its host address :8082 (a host socket listens there)');
      // Control: A still gets the container.
      expect(await hostnameVia(a, a.hostAddress, 8082)).toBe(c.hostname);
    }));

  it('3. several sources with "+" and CIDRs: every listed source reaches', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'al3', '198.18.82.0/24');
      const both = await web(local, n.name, { expose: `8083:80@${b.address}+${a.address}/32` });
      const wide = await web(local, n.name, { expose: `8084:80@198.51.100.0/24`, ports: [80] });
      for (const o of [a, b]) {
        expect(await hostnameVia(o, o.hostAddress, 8083)).toBe(both.hostname);
        expect(await hostnameVia(o, o.hostAddress, 8084)).toBe(wide.hostname);
        expect(await hostnameVia(o, wide.address, 80)).toBe(wide.hostname);
      }
      // Canonical and sorted: A (lower slot, so lower address) first, both as /32.
      expect((await lsExposures(both.address)).map((e) => e.sources)).toEqual([[`${a.address}/32`, `${b.address}/32`]]);
      expect((await lsExposures(wide.address)).map((e) => e.sources)).toEqual([['198.51.100.0/24']]);
    }));

  it('4. the network default (-o com.example.expose.from) applies to -p and items without @; @… and @any override it', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'al4', '198.18.83.0/24', { [EXPOSE_FROM]: a.address });
      const [viaP, viaItem, own, open] = await Promise.all([
        web(local, n.name, { publish: ['8090:80'] }),
        web(local, n.name, { expose: '8091:80' }),
        web(local, n.name, { expose: `8092:80@${b.address}/32` }),
        web(local, n.name, { expose: '8093:80@any' }),
      ]);
      // Default: only A, on both paths, for -p and for an item without @.
      expect(await hostnameVia(a, a.hostAddress, 8090)).toBe(viaP.hostname);
      expect(await hostnameVia(a, viaP.address, 80)).toBe(viaP.hostname);
      expect(await hostnameVia(a, a.hostAddress, 8091)).toBe(viaItem.hostname);
      const [bP, bPDirect, bItem] = await Promise.all([shut(b, b.hostAddress, 8090), shut(b, viaP.address, 80), shut(b, b.hostAddress, 8091)]);
      expectDropped(bP, 'B -> host :8090 (-p, network default A)');
      expectDropped(bPDirect, 'B -> -p container :80 directly (network default A)');
      expectDropped(bItem, 'B -> host :8091 (item without @, network default A)');
      // The item's own list replaces the default: B, not A.
      expect(await hostnameVia(b, b.hostAddress, 8092)).toBe(own.hostname);
      expect(await hostnameVia(b, own.address, 80)).toBe(own.hostname);
      expectDropped(await shut(a, a.hostAddress, 8092), 'A -> host :8092 (item allows B only)');
      // @any: everybody.
      expect(await hostnameVia(a, a.hostAddress, 8093)).toBe(open.hostname);
      expect(await hostnameVia(b, b.hostAddress, 8093)).toBe(open.hostname);
      expect(await hostnameVia(b, open.address, 80)).toBe(open.hostname);

      const ls = async (w: { address: string }) => (await lsExposures(w.address)).map((x) => [x.sources, x.sourcesFrom]);
      expect(await ls(viaP)).toEqual([[[`${a.address}/32`], 'network']]);
      expect(await ls(viaItem)).toEqual([[[`${a.address}/32`], 'network']]);
      expect(await ls(own)).toEqual([[[`${b.address}/32`], 'item']]);
      expect((await ls(open))[0]![0]).toBe('any');
    }));

  it('5. bad sources are refused with the item quoted; a bad network default refuses the network', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'al5', '198.18.84.0/24');
      const hostBits = await runRefused(local, { network: { name: n.name, driverOpts: { [EXPOSE]: '8095:80@10.1.2.3/8' } } });
      step(`refused as expected: ${hostBits.stderr.trim()}`);
      expect(hostBits.stderr).toContain('8095:80@10.1.2.3/8');
      expect(hostBits.stderr).toContain('10.0.0.0/8');
      expect((await inspectContainer(hostBits.name)).State.Running).toBe(false);
      const loopback = await runRefused(local, { network: { name: n.name, driverOpts: { [EXPOSE]: `127.0.0.1:8096:80@${a.address}` } } });
      step(`refused as expected: ${loopback.stderr.trim()}`);
      expect(loopback.stderr).toContain(`127.0.0.1:8096:80@${a.address}`);

      const name = uniqueName('al5bad');
      let refusal = '';
      try {
        await createNetwork(
          name,
          { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.85.0/24', options: { [EXPOSE_FROM]: 'nowhere' } },
          local,
        );
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
        refusal = e.result.stderr;
      }
      step(`network refused as expected: ${refusal.trim()}`);
      expect(refusal).toContain(EXPOSE_FROM);
      expect(refusal).toContain('nowhere');
    }));

  it('6. allowlists on address-bound and interface-bound exposures: allowed sources reach, others are dropped before NAT', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'al7', '198.18.98.0/24');
      // Only A arrives on A's link and at A's host-side address, so "another source" is A itself with
      // an allowlist that names B. Dropped shows as a timeout: without the guard the packet would not
      // be translated and the host would answer with a reset (nothing listens on these ports).
      const [bound, iface] = await Promise.all([
        web(local, n.name, { expose: `${a.hostAddress}:8101:80@${a.address} ${a.hostAddress}:8102:80@${b.address}` }),
        web(local, n.name, { expose: `%${a.hostLink}:8103:80@${a.address} %${a.hostLink}:8104:80@${b.address}` }),
      ]);
      expect(await hostnameVia(a, a.hostAddress, 8101)).toBe(bound.hostname);
      expect(await hostnameVia(a, a.hostAddress, 8103)).toBe(iface.hostname);
      const [boundOther, ifaceOther, unexposed] = await Promise.all([
        shut(a, a.hostAddress, 8102),
        shut(a, a.hostAddress, 8104),
        shut(a, a.hostAddress, 8105),
      ]);
      expectDropped(boundOther, 'A -> A host address :8102 (bound, allowlist B)');
      expectDropped(ifaceOther, `A -> A host address :8104 (%${a.hostLink}, allowlist B)`);
      // Control for the reasoning above: an unexposed port on the host address is refused, not dropped.
      expect(unexposed.outcome, unexposed.detail).toBe('refused');
    }));

  it('7. the allowlist is kept across a plugin restart', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'al6', '198.18.86.0/24');
      const c = await web(local, n.name, { expose: `8097:80@${a.address}` });
      await plugin.restart('SIGTERM');
      expect(await hostnameVia(a, a.hostAddress, 8097)).toBe(c.hostname);
      expectNotOpen(await shut(b, b.hostAddress, 8097), 'B -> host :8097 after a plugin restart');
      step(`allowlist suite: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }));
});
