// IPv6 end to end (issue 7): dual-stack portnet networks (`--ipv6 --subnet v4 --subnet v6`, both through
// portnet's IPAM), routed v6 endpoints whose gateway is the host veth's fe80::1, and v6 exposures with
// the same policy as v4: `[::]:…`, all-address items, `[host v6 address]:…`, `[::1]:…` and allowlists.
// Two outside hosts with v6 addresses on their links (2001:db8:ffKK::/64) play machines on the LAN.
//
// Traffic only goes to loopback, to the containers made here, to the outside hosts and to the host side
// of their veths. Every v6 address used is in 2001:db8::/32 (unreachable route on the host).
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CommandError,
  containerAddress6,
  containerPid,
  createNetwork,
  createOutsideHost,
  docker,
  dockerExec,
  E2E_DRIVER,
  ensureTestbed,
  expectDropped,
  expectNotOpen,
  hostnameVia,
  kernelLeftovers,
  listNetworks,
  nftSets,
  pluginState,
  portnetCli,
  portnetNetwork,
  run,
  scoped,
  shut,
  startE2ePlugin,
  step,
  tcpProbe,
  uniqueName,
  useCleanup,
  waitOpen,
  web,
  type Cleanup,
  type OutsideHost,
  type PluginProcess,
} from './support/index.js';

const cleanup = useCleanup('all');
let plugin: PluginProcess;
let a: OutsideHost & { address6: string; hostAddress6: string };
let b: OutsideHost & { address6: string; hostAddress6: string };
const t0 = Date.now();

function withV6(o: OutsideHost): OutsideHost & { address6: string; hostAddress6: string } {
  if (!o.address6 || !o.hostAddress6) throw new Error(`outside host ${o.name} has no IPv6 addresses`);
  return o as OutsideHost & { address6: string; hostAddress6: string };
}

beforeAll(async () => {
  await ensureTestbed();
  plugin = await startE2ePlugin(cleanup);
  a = withV6(await createOutsideHost('v6a', { ipv6: true }, cleanup));
  b = withV6(await createOutsideHost('v6b', { ipv6: true }, cleanup));
  step(`outside A ${a.address6} (host side ${a.hostAddress6}), outside B ${b.address6} (host side ${b.hostAddress6})`);
});

/** An address of test 1's pool that no endpoint has: c puts it on its own eth0 to spoof. */
const SPOOF = '2001:db8:89::99';

/** Lines of the UDP datagrams that arrive at `port` of `container` (any v6 source) while `send` runs. */
async function udpHeard(local: Cleanup, container: string, port: number, send: () => Promise<void>): Promise<string[]> {
  const pid = String(await containerPid(container));
  const child = spawn('nsenter', ['-t', pid, '-n', 'socat', '-u', `UDP6-RECV:${port}`, 'STDOUT'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  local.defer(`stop the udp listener in ${container}`, stop);
  for (let i = 0; ; i++) {
    const ss = await run('nsenter', ['-t', pid, '-n', 'ss', '-Hlun', 'sport', '=', `:${port}`]);
    if (ss.stdout.trim()) break;
    if (i > 100 || child.exitCode !== null) throw new Error(`udp listener in ${container} did not bind ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await send();
  await new Promise((r) => setTimeout(r, 500));
  await stop();
  return out.split('\n').filter((l) => l !== '');
}

describe('IPv6', () => {
  it('1. a dual-stack network: v6 address in the pool, default route via fe80::1, peers and the host reach it over v6', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'v61', ['198.18.89.0/24', '2001:db8:89::/64']);
      const [c, d] = await Promise.all([web(local, n.name, { ipv6: true }), web(local, n.name, { ipv6: true })]);
      expect(c.address6).toMatch(/^2001:db8:89::/);
      expect(d.address6).not.toBe(c.address6);
      const routes = (await dockerExec(c.name, ['ip', '-6', 'route', 'show'])).stdout;
      expect(routes).toMatch(/^default via fe80::1 dev eth0/m);
      const addrs = (await dockerExec(c.name, ['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout;
      expect(addrs).toContain(`inet6 ${c.address6}/`);
      // Routed, not bridged: a peer on the same network is reached through the host.
      expect(await hostnameVia({ container: d.name }, c.address6!, 80)).toBe(c.hostname);
      expect(await hostnameVia('host', c.address6!, 80)).toBe(c.hostname);
      // Nothing is exposed: outside gets nothing over v6.
      expectDropped(await shut(a, c.address6!, 80), 'A -> container v6 :80 (nothing exposed)');
      const ours = (await run('ip', ['-6', 'route', 'show', 'proto', '91'])).stdout;
      expect(ours).toContain(c.address6!);
      expect(ours).toContain('2001:db8:89::/64');

      // Anti-spoofing: c may send from its own v6 address, not from another address of the pool.
      // UDP with a recording listener in d, since a spoofed TCP handshake fails anyway (no way back).
      const cPid = await containerPid(c.name);
      await run('nsenter', ['-t', String(cPid), '-n', 'ip', '-6', 'addr', 'add', `${SPOOF}/128`, 'dev', 'eth0', 'nodad']);
      const heard = await udpHeard(local, d.name, 5000, async () => {
        await run('nsenter', ['-t', String(cPid), '-n', 'socat', '-u', '-', `UDP6:[${d.address6}]:5000,bind=[${SPOOF}]`], { input: 'spoofed\n' });
        await run('nsenter', ['-t', String(cPid), '-n', 'socat', '-u', '-', `UDP6:[${d.address6}]:5000`], { input: 'genuine\n' });
      });
      expect(heard).toEqual(['genuine']);
    }));

  it('2. [::]:8080:80 is v6 only; 8085:80 is both families and also open on the container v6 address; unexposed ports stay shut', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'v62', ['198.18.90.0/24', '2001:db8:90::/64']);
      const c = await web(local, n.name, { ipv6: true, expose: '[::]:8080:80 8085:80', ports: [80, 81] });
      const v6 = c.address6!;
      expect(await hostnameVia(a, a.hostAddress6, 8080)).toBe(c.hostname);
      expectNotOpen(await shut(a, a.hostAddress, 8080), 'A -> v4 host address :8080 ([::] is IPv6 only)');
      expect(await hostnameVia(a, a.hostAddress6, 8085)).toBe(c.hostname);
      expect(await hostnameVia(a, a.hostAddress, 8085)).toBe(c.hostname);
      expect(await hostnameVia(a, v6, 80)).toBe(c.hostname);
      expect(await hostnameVia(a, c.address, 80)).toBe(c.hostname);

      const [viaHost81, direct81] = await Promise.all([shut(a, a.hostAddress6, 81), shut(a, v6, 81)]);
      expectNotOpen(viaHost81, 'A -> host v6 :81');
      expectDropped(direct81, 'A -> container v6 :81 (unexposed)');
      expect(await hostnameVia('host', v6, 81)).toBe(c.hostname);
      // The host reaches its own v6 exposure through a local address (output path).
      expect(await hostnameVia('host', a.hostAddress6, 8080)).toBe(c.hostname);

      const sets = await nftSets();
      expect(JSON.stringify(sets.get('exposed_direct6'))).toContain(v6);
      expect(JSON.stringify(sets.get('dnat_any6'))).toContain(v6);
    }));

  it('3. [host v6 address]:8081:80 is bound to that address; [::1]:8082:80 is for the host alone', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'v63', ['198.18.91.0/24', '2001:db8:91::/64']);
      const c = await web(local, n.name, { ipv6: true, expose: `[${a.hostAddress6}]:8081:80 [::1]:8082:80` });
      expect(await hostnameVia(a, a.hostAddress6, 8081)).toBe(c.hostname);
      expect(await hostnameVia('host', a.hostAddress6, 8081)).toBe(c.hostname);
      const [otherAddr, lo, direct] = await Promise.all([
        shut(b, b.hostAddress6, 8081),
        shut('host', '::1', 8081),
        shut(a, c.address6!, 80),
      ]);
      expectNotOpen(otherAddr, 'B -> its host v6 address :8081 (bound to A side)');
      expectNotOpen(lo, 'host -> [::1]:8081');
      expectDropped(direct, 'A -> container v6 :80 (bound exposures are not open on the container address)');

      expect((await tcpProbe('host', '::1', 8082, 3000)).outcome).toBe('open');
      expect(await hostnameVia('host', '::1', 8082)).toBe(c.hostname);
      const socat = await run('socat', ['-T3', '-', 'TCP6:[::1]:8082,connect-timeout=3'], {
        input: 'GET /hostname HTTP/1.0\r\n\r\n',
        allowFail: true,
        timeoutMs: 10_000,
      });
      expect(socat.stdout, socat.stderr).toContain(c.hostname);
      const [fromA, fromAv4] = await Promise.all([shut(a, a.hostAddress6, 8082), shut(a, a.hostAddress, 8082)]);
      expectNotOpen(fromA, 'A -> host v6 :8082 ([::1] only)');
      expectNotOpen(fromAv4, 'A -> host v4 :8082 ([::1] only)');
    }));

  it('4. v6 allowlists: @A6 admits A over v6 on both paths, not B; a mixed v4+v6 list admits A in both families', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'v64', ['198.18.92.0/24', '2001:db8:92::/64']);
      const [c, m] = await Promise.all([
        web(local, n.name, { ipv6: true, expose: `8083:80@${a.address6}` }),
        web(local, n.name, { ipv6: true, expose: `8084:80@${a.address}+${a.address6}` }),
      ]);
      expect(await hostnameVia(a, a.hostAddress6, 8083)).toBe(c.hostname);
      expect(await hostnameVia(a, c.address6!, 80)).toBe(c.hostname);
      const [bHost, bDirect] = await Promise.all([shut(b, b.hostAddress6, 8083), shut(b, c.address6!, 80)]);
      expectDropped(bHost, 'B -> host v6 :8083 (allowlist A6)');
      expectDropped(bDirect, 'B -> container v6 :80 (allowlist A6)');

      expect(await hostnameVia(a, a.hostAddress6, 8084)).toBe(m.hostname);
      expect(await hostnameVia(a, a.hostAddress, 8084)).toBe(m.hostname);
      const [b6, b4] = await Promise.all([shut(b, b.hostAddress6, 8084), shut(b, b.hostAddress, 8084)]);
      expectDropped(b6, 'B -> host v6 :8084');
      expectDropped(b4, 'B -> host v4 :8084');

      // Bound to A's v6 host address and to A's link, each allowing B only: A is dropped before NAT
      // (a timeout; an untranslated packet would get a reset from the host, as the unexposed port shows).
      const bi = await web(local, n.name, { ipv6: true, expose: `[${a.hostAddress6}]:8086:80@${b.address6} %${a.hostLink}:8087:80@${b.address6}` });
      expect(bi.address6).toBeDefined();
      const [bound, iface, unexposed] = await Promise.all([shut(a, a.hostAddress6, 8086), shut(a, a.hostAddress6, 8087), shut(a, a.hostAddress6, 8088)]);
      expectDropped(bound, 'A -> A host v6 :8086 (bound, allowlist B6)');
      expectDropped(iface, `A -> A host v6 :8087 (%${a.hostLink}, allowlist B6)`);
      expect(unexposed.outcome, unexposed.detail).toBe('refused');
    }));

  it('5. %IFACE binding covers IPv6: A reaches over v6 and v4 on its link, B on neither', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'v65', ['198.18.95.0/24', '2001:db8:95::/64']);
      const c = await web(local, n.name, { ipv6: true, expose: `%${a.hostLink}:8086:80` });
      expect(await hostnameVia(a, a.hostAddress6, 8086)).toBe(c.hostname);
      expect(await hostnameVia(a, a.hostAddress, 8086)).toBe(c.hostname);
      const [b6, b4, direct] = await Promise.all([shut(b, b.hostAddress6, 8086), shut(b, b.hostAddress, 8086), shut(a, c.address6!, 80)]);
      expectNotOpen(b6, `B -> its host v6 address :8086 (arrives on ${b.hostLink})`);
      expectNotOpen(b4, `B -> its host v4 address :8086 (arrives on ${b.hostLink})`);
      expectDropped(direct, 'A -> container v6 :80 (interface bindings are not open on the container address)');
    }));

  it('6. v6 endpoints and exposures survive a plugin restart and a container restart; doctor finds nothing wrong', () =>
    scoped(async (local) => {
      const n = await portnetNetwork(local, 'v66', ['198.18.96.0/24', '2001:db8:96::/64']);
      // -p with a bracketed v6 host address goes through Docker's own parsing, not the option's.
      const c = await web(local, n.name, { ipv6: true, expose: `8088:80@${a.address6}`, publish: [`[${a.hostAddress6}]:8089:80`] });
      expect(await hostnameVia(a, a.hostAddress6, 8089)).toBe(c.hostname);
      step('restart the plugin (SIGTERM)');
      await plugin.restart('SIGTERM');
      expect(await hostnameVia(a, a.hostAddress6, 8088)).toBe(c.hostname);
      expect(await hostnameVia(a, a.hostAddress6, 8089)).toBe(c.hostname);
      expectDropped(await shut(b, b.hostAddress6, 8088), 'B -> host v6 :8088 after the restart (allowlist A6)');

      step(`docker restart ${c.name}`);
      await docker(['restart', '-t', '1', c.name]);
      const v6 = await containerAddress6(c.name, n.name);
      await waitOpen(v6, 80);
      expect(await hostnameVia(a, a.hostAddress6, 8088)).toBe(c.hostname);
      expect(await hostnameVia(a, v6, 80)).toBe(c.hostname);

      const doc = await portnetCli(plugin, ['doctor', '--json']);
      const findings = (JSON.parse(doc.stdout) as { findings: Array<{ status: string; check: string; message: string }> }).findings;
      expect(findings.filter((f) => f.status === 'problem'), doc.stdout).toEqual([]);
      expect(doc.code).toBe(0);
      // Docker 20.10 does not manage ip6tables: with forwarding on, the host routes IPv6 between all
      // its interfaces, and doctor says so exactly when ip6tables' FORWARD policy lets it.
      const policy = /^-P FORWARD (\S+)/m.exec((await run('ip6tables', ['-w', '5', '-S', 'FORWARD'])).stdout)?.[1];
      expect(findings.some((f) => f.check === 'ip6-transit' && f.status === 'warn'), doc.stdout).toBe(policy === 'ACCEPT');
    }));

  it('7. --ipv6 without an IPv6 --subnet is refused with a clear error (no default v6 range)', () =>
    scoped(async (local) => {
      const name = uniqueName('v6nosub');
      let stderr = '';
      try {
        await createNetwork(name, { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.99.0/28', extraArgs: ['--ipv6'] }, local);
      } catch (e) {
        if (!(e instanceof CommandError)) throw e;
        stderr = e.result.stderr;
      }
      step(`refused as expected: ${stderr.trim()}`);
      expect(stderr).toMatch(/--subnet/);
      expect(await listNetworks()).not.toContain(name);
    }));

  it('8. once everything is removed, no v6 element, route or link of portnet is left', async () => {
    const sets = await nftSets();
    const nonEmpty = [...sets].filter(([, e]) => e.length > 0).map(([name, e]) => `${name}: ${JSON.stringify(e)}`);
    expect(nonEmpty).toEqual([]);
    expect((await run('ip', ['-6', 'route', 'show', 'proto', '91'])).stdout.trim()).toBe('');
    expect((await run('ip', ['-6', 'route', 'show', 'table', 'local', 'proto', '91'])).stdout.trim()).toBe('');
    expect((await kernelLeftovers()).links).toEqual([]);
    expect((await pluginState(plugin)).endpoints).toEqual([]);
    step(`IPv6 suite: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
