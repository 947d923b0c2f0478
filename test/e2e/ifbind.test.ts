// Interface binding end to end (issue 7): `%IFNAME:HOST_PORT:CONTAINER_PORT` exposes on every address
// of one host interface, for packets that arrive on it, and follows address changes with no rule change.
// Two outside hosts: A's link (tbo…) is the bound interface, B's is another one.
//
// Traffic only goes to the containers made here, to the outside hosts and to the host side of their veths
// (including one extra test-range address the test puts on A's host side).
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createOutsideHost,
  ensureTestbed,
  expectDropped,
  expectNotOpen,
  EXPOSE,
  hostnameVia,
  nftTableText,
  portnetLs,
  portnetNetwork,
  run,
  runRefused,
  scoped,
  shut,
  startE2ePlugin,
  step,
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
/** Added to A's host-side link after the container started; inside 198.18.0.0/15, which A routes via the host. */
const LATE_ADDRESS = '198.19.200.1';

beforeAll(async () => {
  await ensureTestbed();
  plugin = await startE2ePlugin(cleanup);
  a = await createOutsideHost('ifa', {}, cleanup);
  // B may also aim at A's host-side address (it arrives on B's link, not on the bound one).
  b = await createOutsideHost('ifb', { routes: ['198.18.0.0/15', '198.51.100.0/24'] }, cleanup);
  step(`outside A ${a.address} on ${a.hostLink} (${a.hostAddress}), outside B ${b.address} on ${b.hostLink} (${b.hostAddress})`);
});

describe('interface binding', () => {
  it('1. %IFACE:8080:80 answers packets that arrive on that interface only, also on an address added later', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'if1', '198.18.87.0/24');
      const c = await web(local, n.name, { expose: `%${a.hostLink}:8080:80` });
      expect(await hostnameVia(a, a.hostAddress, 8080)).toBe(c.hostname);

      const [bOwn, bToA, direct] = await Promise.all([
        shut(b, b.hostAddress, 8080),
        shut(b, a.hostAddress, 8080),
        shut(a, c.address, 80),
      ]);
      expectNotOpen(bOwn, `B -> its host address :8080 (arrives on ${b.hostLink})`);
      expectNotOpen(bToA, `B -> A's host address :8080 (arrives on ${b.hostLink}, not ${a.hostLink})`);
      // Like an address-bound exposure: not open on the container address.
      expectDropped(direct, 'A -> container :80');
      // Interface binding is about packets arriving on the interface: the host's own connections
      // (output path) are not translated.
      expectNotOpen(await shut('host', a.hostAddress, 8080), 'host -> A host address :8080');

      const before = await nftTableText();
      await run('ip', ['addr', 'add', `${LATE_ADDRESS}/32`, 'dev', a.hostLink]);
      local.defer(`ip addr del ${LATE_ADDRESS} dev ${a.hostLink}`, () =>
        run('ip', ['addr', 'del', `${LATE_ADDRESS}/32`, 'dev', a.hostLink], { allowFail: true }),
      );
      expect(await hostnameVia(a, LATE_ADDRESS, 8080)).toBe(c.hostname);
      expect(await nftTableText(), 'portnet rules or elements changed after an address was added').toBe(before);
      // B routes 198.18.0.0/15 to the host as well, but arrives on its own link.
      expectNotOpen(await shut(b, LATE_ADDRESS, 8080), `B -> ${LATE_ADDRESS}:8080 (on ${a.hostLink}, arrives on ${b.hostLink})`);

      const row = (await portnetLs(plugin)).find((r) => r.address === c.address);
      expect(row?.exposures.map((x) => [x.hostIface, x.text]), JSON.stringify(row)).toEqual([[a.hostLink, expect.stringContaining(`%${a.hostLink}:8080`)]]);
    }));

  it('2. conflicts: an interface binding clashes with the same port on all addresses and on an address; not with 127.0.0.1 or another interface', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'if2', '198.18.88.0/24');
      const c = await web(local, n.name, { expose: `%${a.hostLink}:8081:80` });
      // The binding covers both families, so either family's wildcard clashes with it too.
      const [wide, wide4, wide6] = await Promise.all([
        runRefused(local, { network: n.name, publish: ['8081:80'] }),
        runRefused(local, { network: n.name, publish: ['0.0.0.0:8081:80'] }),
        runRefused(local, { network: n.name, publish: ['[::]:8081:80'] }),
      ]);
      for (const r of [wide, wide4, wide6]) expect(r.stderr).toContain('host port 8081/tcp');
      const bound = await runRefused(local, { network: n.name, publish: [`${b.hostAddress}:8081:80`] });
      expect(bound.stderr).toContain('host port 8081/tcp');
      const same = await runRefused(local, { network: { name: n.name, driverOpts: { [EXPOSE]: `%${a.hostLink}:8081:80` } } });
      expect(same.stderr).toContain('host port 8081/tcp');
      step(`refused as expected: ${same.stderr.trim()}`);

      const [lo, other] = await Promise.all([
        web(local, n.name, { publish: ['127.0.0.1:8081:80'] }),
        web(local, n.name, { expose: `%${b.hostLink}:8081:80` }),
      ]);
      expect(await hostnameVia('host', '127.0.0.1', 8081)).toBe(lo.hostname);
      expect(await hostnameVia(b, b.hostAddress, 8081)).toBe(other.hostname);
      expect(await hostnameVia(a, a.hostAddress, 8081)).toBe(c.hostname);
      step(`interface binding suite: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }));
});
