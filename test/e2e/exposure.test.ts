// Exposure end to end (DESIGN §2): com.example.expose and Docker's -p against the real engine, real
// containers, an outside host namespace and portnet's nft table. Who may reach what, host-port mapping,
// UDP, ranges, 127.0.0.1 binding (moby#45610), localhost, hairpin, icc, conflicts and bad values.
//
// Traffic only goes to loopback, to the containers made here, to the outside host and to the host side
// of its veth (`outside.hostAddress`, a local address of the host, so portnet's DNAT applies to it).
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { describe, expect, it, beforeAll } from 'vitest';
import {
  Cleanup,
  CommandError,
  containerAddress,
  containerEndpoint,
  containerPid,
  createOutsideHost,
  docker,
  ensureTestbed,
  expectNotOpen,
  EXPOSE,
  hostnameVia,
  httpdCmd,
  inspectContainer,
  inspectNetwork,
  kernelLeftovers,
  nftSets,
  pluginState,
  portnetNetwork,
  removeContainer,
  run,
  runContainer,
  runRefused,
  shut,
  SHUT_MS,
  startEchoServer,
  step,
  startE2ePlugin,
  tcpProbe,
  udpExchange,
  uniqueName,
  useCleanup,
  waitOpen,
  web,
  type OutsideHost,
  type PluginProcess,
  type Web,
  scoped,
} from './support/index.js';

const cleanup = useCleanup('all');
let plugin: PluginProcess;
let outside: OutsideHost;
const t0 = Date.now();

beforeAll(async () => {
  await ensureTestbed();
  plugin = await startE2ePlugin(cleanup);
  outside = await createOutsideHost('expo', {}, cleanup);
  step(`outside host ${outside.netns}: ${outside.address}, host side ${outside.hostAddress}`);
});

// ------------------------------------------------------------------ helpers

/** What the client's address looks like to a server in `container` on `port` (socat SYSTEM echo of SOCAT_PEERADDR). */
async function startPeerAddressServer(local: Cleanup, container: string, port: number): Promise<void> {
  const pid = await containerPid(container);
  const child: ChildProcess = spawn(
    'nsenter',
    ['-t', String(pid), '-n', 'socat', `TCP4-LISTEN:${port},fork,reuseaddr`, 'SYSTEM:echo $SOCAT_PEERADDR'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  local.defer(`stop peer-address server in ${container}`, async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  for (let i = 0; i < 100; i++) {
    const ss = await run('nsenter', ['-t', String(pid), '-n', 'ss', '-Hlnt', 'sport', '=', `:${port}`], { allowFail: true });
    if (ss.stdout.trim()) return;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`peer-address server on ${container}:${port} did not start`);
}

/** Reads what the peer-address server says, from the outside host. */
async function peerAddressSeen(ip: string, port: number): Promise<string> {
  const r = await outside.exec('socat', ['-u', `TCP4:${ip}:${port},connect-timeout=3`, 'STDOUT'], { allowFail: true, timeoutMs: 8000 });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

/** Packets counted by the rule of `chain` whose expression mentions `needle`. */
async function ruleCounter(chain: string, needle: string): Promise<number> {
  const out = (await run('nft', ['-j', 'list', 'chain', 'inet', 'portnet', chain])).stdout;
  const json = JSON.parse(out) as { nftables: Array<{ rule?: { expr: unknown[] } }> };
  const rule = json.nftables.find((e) => e.rule && JSON.stringify(e.rule.expr).includes(needle))?.rule;
  const c = rule?.expr.find((x): x is { counter: { packets: number } } => typeof x === 'object' && x !== null && 'counter' in x);
  if (!c) throw new Error(`no counter on the rule of ${chain} that mentions ${needle}`);
  return c.counter.packets;
}

/** Containers Docker lists as attached to the network (running endpoints). */
async function attached(net: string): Promise<string[]> {
  return Object.values((await inspectNetwork(net)).Containers ?? {}).map((c) => c.Name);
}


// ------------------------------------------------------------------ tests

describe('exposure on a real Docker Engine', () => {
  it('1. an exposed port (expose=80) is reachable from outside through the host address and on the container address', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x1', '198.18.20.0/24');
      const a = await web(local, net.name, { expose: '80' });
      expect(await hostnameVia(outside, outside.hostAddress, 80)).toBe(a.hostname);
      expect(await hostnameVia(outside, a.address, 80)).toBe(a.hostname);
      // The firewall says the same: the container's tcp/80 is in the direct and the DNAT sets.
      const sets = await nftSets();
      expect(JSON.stringify(sets.get('exposed_direct'))).toContain(a.address);
      expect(JSON.stringify(sets.get('dnat_any'))).toContain(a.address);
    }));

  it('2. an unexposed port of the same container is unreachable from outside both ways, but open from the host', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x2', '198.18.21.0/24');
      const a = await web(local, net.name, { expose: '80', ports: [80, 81] });
      // Control: the exposed port answers from outside, so the container and the path are alive.
      expect(await hostnameVia(outside, a.address, 80)).toBe(a.hostname);
      const [viaHost, direct] = await Promise.all([shut(outside, outside.hostAddress, 81), shut(outside, a.address, 81)]);
      expectNotOpen(viaHost, 'outside -> host address :81');
      // Dropped in the forward path (not refused by the container: the packet never reaches it).
      expect(direct.outcome, direct.detail).toBe('timeout');
      expect(await hostnameVia('host', a.address, 81)).toBe(a.hostname);
    }));

  it('3. a container with no exposure is unreachable from outside, reachable from the host', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x3', '198.18.22.0/24');
      const a = await web(local, net.name);
      const [viaHost, direct] = await Promise.all([shut(outside, outside.hostAddress, 80), shut(outside, a.address, 80)]);
      expectNotOpen(viaHost, 'outside -> host address :80');
      expect(direct.outcome, direct.detail).toBe('timeout');
      expect(await hostnameVia('host', a.address, 80)).toBe(a.hostname);
    }));

  it('4. -p 8081:80 works from outside through the host address and keeps the client address', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x4', '198.18.23.0/24');
      const a = await web(local, net.name, { publish: ['8081:80', '8084:7000'] });
      expect(await hostnameVia(outside, outside.hostAddress, 8081)).toBe(a.hostname);
      // A -p on all addresses is also open directly on the container address (container port).
      expect(await hostnameVia(outside, a.address, 80)).toBe(a.hostname);
      // The client's source address is preserved through DNAT (DESIGN §2).
      await startPeerAddressServer(local, a.name, 7000);
      expect(await peerAddressSeen(outside.hostAddress, 8084)).toBe(outside.address);
      // The container port is not a host port.
      expectNotOpen(await shut(outside, outside.hostAddress, 7000), 'outside -> host address :7000');
    }));

  it('5. -p 127.0.0.1:8082:80 is for the host alone; a crafted packet for 127.0.0.1 from outside is dropped', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x5', '198.18.24.0/24');
      // a publishes on 127.0.0.1; c is a plain neighbour used below to craft packets from a container.
      // A second outside host (so the shared one stays untouched) plays the attacker on the LAN.
      const [a, c, crafty] = await Promise.all([
        web(local, net.name, { publish: ['127.0.0.1:8082:80'] }),
        runContainer({ network: net.name }, local),
        createOutsideHost('expolo', {}, local),
      ]);
      expect(await hostnameVia('host', '127.0.0.1', 8082)).toBe(a.hostname);
      const [viaHost, direct, hostViaOtherAddress, containerViaHost] = await Promise.all([
        shut(outside, outside.hostAddress, 8082),
        shut(outside, a.address, 80),
        shut('host', outside.hostAddress, 8082),
        shut({ container: c.name }, outside.hostAddress, 8082),
      ]);
      expectNotOpen(viaHost, 'outside -> host address :8082');
      expect(direct.outcome, direct.detail).toBe('timeout');
      // Bound to 127.0.0.1: not through another host address, for the host itself or a container.
      expectNotOpen(hostViaOtherAddress, 'host -> host address :8082');
      expectNotOpen(containerViaHost, 'container -> host address :8082');

      // moby#45610. Both crafters route 127.0.0.1 out of eth0 to the host instead of their own loopback
      // (the local-table rule moves behind a rule for 127.0.0.1). The outside host's link on the host
      // gets route_localnet=1 (worst case: the kernel's martian filter does not help), and c's pn veth
      // has it already (portnet sets it for localhost DNAT replies): only portnet's rules stand in the way.
      const reroute = (via: string) => [
        ['rule', 'add', 'pref', '100', 'lookup', 'local'],
        ['rule', 'del', 'pref', '0'],
        ['rule', 'add', 'to', '127.0.0.1', 'lookup', '100', 'pref', '10'],
        ['route', 'add', '127.0.0.1', 'via', via, 'dev', 'eth0', 'onlink', 'table', '100'],
      ];
      const pid = String(await containerPid(c.name));
      for (const args of reroute(crafty.hostAddress)) await crafty.exec('ip', args);
      for (const args of reroute('169.254.1.1')) await run('nsenter', ['-t', pid, '-n', 'ip', ...args]);
      await run('sysctl', ['-qw', `net.ipv4.conf.${crafty.hostLink}.route_localnet=1`]);
      const [beforeLan, beforePn] = await Promise.all([
        ruleCounter('prerouting_raw', 'loopback_exposures'),
        ruleCounter('prerouting_raw', '127.0.0.0'),
      ]);
      const [fromLan, fromContainer] = await Promise.all([
        tcpProbe(crafty, '127.0.0.1', 8082, 2000),
        tcpProbe({ container: c.name }, '127.0.0.1', 8082, 2000),
      ]);
      expect(fromLan.outcome, fromLan.detail).toBe('timeout');
      expect(fromContainer.outcome, fromContainer.detail).toBe('timeout');
      // The packets did reach the host (so the results mean something) and died in portnet's rules.
      expect(await ruleCounter('prerouting_raw', 'loopback_exposures')).toBeGreaterThan(beforeLan);
      expect(await ruleCounter('prerouting_raw', '127.0.0.0')).toBeGreaterThan(beforePn);

      // Nor does c reach the host's own loopback services (here a UDP listener on 127.0.0.1 that
      // records what arrives; UDP, so a datagram that got in is seen even if no answer gets out).
      const heard: string[] = [];
      const listener = dgram.createSocket('udp4');
      listener.on('message', (m) => heard.push(m.toString('utf8')));
      await new Promise<void>((r) => listener.bind(18082, '127.0.0.1', () => r()));
      local.defer('close the 127.0.0.1 udp listener', () => new Promise<void>((r) => listener.close(() => r())));
      await udpExchange({ container: c.name }, '127.0.0.1', 18082, 'from-container\n', SHUT_MS);
      await udpExchange('host', '127.0.0.1', 18082, 'from-host\n', 300); // control: the listener works
      await new Promise((r) => setTimeout(r, 200));
      expect(heard).toEqual(['from-host\n']);

      // And the exposure still works for the host.
      expect(await hostnameVia('host', '127.0.0.1', 8082)).toBe(a.hostname);
    }));

  it('6. expose=8080:80 maps a different host port', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x6', '198.18.25.0/24');
      // b is unexposed and listens on 8080, for the DNAT check at the end.
      const [a, b] = await Promise.all([web(local, net.name, { expose: '8080:80' }), web(local, net.name, { ports: [8080] })]);
      expect(await hostnameVia(outside, outside.hostAddress, 8080)).toBe(a.hostname);
      expect(await hostnameVia(outside, a.address, 80)).toBe(a.hostname);
      const [hostPort80, direct8080, passing] = await Promise.all([
        shut(outside, outside.hostAddress, 80),
        shut(outside, a.address, 8080),
        shut(outside, b.address, 8080),
      ]);
      expectNotOpen(hostPort80, 'outside -> host address :80 (the host port is 8080)');
      expectNotOpen(direct8080, 'outside -> container :8080 (the container port is 80)');
      // DNAT only for traffic addressed to the host (CVE-2025-67499): a packet for another container's
      // address with the exposed host port is routed to that container (unexposed, so dropped), never
      // translated to a. b does listen on 8080 (control from the host).
      expect(passing.outcome, passing.detail).toBe('timeout');
      expect(await hostnameVia('host', b.address, 8080)).toBe(b.hostname);
    }));

  it('7. UDP exposure (5353:53/udp) carries datagrams both ways; tcp and other udp ports stay shut', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x7', '198.18.26.0/24');
      const c = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: '5353:53/udp' } } }, local);
      const address = await containerAddress(c.name, net.name);
      for (const [proto, port] of [['udp', 53], ['udp', 54], ['tcp', 53]] as const) {
        const s = await startEchoServer({ container: c.name }, proto, port);
        local.defer(`stop ${proto} echo ${port}`, () => s.stop());
      }
      expect(await udpExchange(outside, outside.hostAddress, 5353, 'via-host-5353\n', 3000)).toBe('via-host-5353\n');
      expect(await udpExchange(outside, address, 53, 'direct-53\n', 3000)).toBe('direct-53\n');
      // Controls from the host: the other servers are up.
      expect(await udpExchange('host', address, 54, 'host-54\n', 3000)).toBe('host-54\n');
      expect((await tcpProbe('host', address, 53, 2000)).outcome).toBe('open');
      const [udp54, tcpViaHost, tcpDirect] = await Promise.all([
        udpExchange(outside, address, 54, 'outside-54\n', SHUT_MS),
        shut(outside, outside.hostAddress, 5353),
        shut(outside, address, 53),
      ]);
      expect(udp54).toBeNull();
      expectNotOpen(tcpViaHost, 'outside -> host address tcp/5353 (only udp is exposed)');
      expect(tcpDirect.outcome, tcpDirect.detail).toBe('timeout');
    }));

  it('8. a port range (9000-9002:9000-9002, plus an offset range 9100-9101:9010-9011) maps port by port', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x8', '198.18.27.0/24');
      const a = await web(local, net.name, { expose: '9000-9002:9000-9002 9100-9101:9010-9011', ports: [9000, 9002, 9003, 9011] });
      const [p9000, p9002, d9000, d9002, p9101] = await Promise.all([
        hostnameVia(outside, outside.hostAddress, 9000),
        hostnameVia(outside, outside.hostAddress, 9002),
        hostnameVia(outside, a.address, 9000),
        hostnameVia(outside, a.address, 9002),
        hostnameVia(outside, outside.hostAddress, 9101),
      ]);
      for (const h of [p9000, p9002, d9000, d9002, p9101]) expect(h).toBe(a.hostname);
      const [p9001, d9003, p9003, p9100, p9011] = await Promise.all([
        shut(outside, outside.hostAddress, 9001),
        shut(outside, a.address, 9003),
        shut(outside, outside.hostAddress, 9003),
        shut(outside, outside.hostAddress, 9100),
        shut(outside, outside.hostAddress, 9011),
      ]);
      // 9001 is exposed but nothing listens: the container itself answers with a reset.
      expect(p9001.outcome, p9001.detail).toBe('refused');
      // 9003 is outside the range: dropped directly, not forwarded through the host address.
      expect(d9003.outcome, d9003.detail).toBe('timeout');
      expectNotOpen(p9003, 'outside -> host address :9003');
      // 9100 -> 9010 where nothing listens: reset by the container; 9011 is a container port, not a host port.
      expect(p9100.outcome, p9100.detail).toBe('refused');
      expectNotOpen(p9011, 'outside -> host address :9011');
      expect(await hostnameVia('host', a.address, 9003)).toBe(a.hostname);
    }));

  it('9. localhost: the host reaches an exposure on 127.0.0.1 and on its other addresses, no userland proxy', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x9', '198.18.28.0/24');
      const a = await web(local, net.name, { expose: '8090:80' });
      expect(await hostnameVia('host', '127.0.0.1', 8090)).toBe(a.hostname);
      expect(await hostnameVia('host', outside.hostAddress, 8090)).toBe(a.hostname);
      // Done in the kernel: nothing on the host listens on 8090.
      const listeners = (await run('ss', ['-Hltn', 'sport', '=', ':8090'])).stdout.trim();
      expect(listeners).toBe('');
    }));

  it('10. hairpin: containers reach an exposure through the host address, another container\'s and their own', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x10', '198.18.29.0/24');
      const other = await portnetNetwork(local, 'x10b', '198.18.30.0/24');
      const [a, b, c] = await Promise.all([
        web(local, net.name, { expose: '8100:80' }),
        web(local, net.name, { expose: '8101:80' }),
        web(local, other.name),
      ]);
      expect(await hostnameVia({ container: b.name }, outside.hostAddress, 8100)).toBe(a.hostname);
      expect(await hostnameVia({ container: a.name }, outside.hostAddress, 8100)).toBe(a.hostname);
      expect(await hostnameVia({ container: a.name }, outside.hostAddress, 8101)).toBe(b.hostname);
      expect(await hostnameVia({ container: b.name }, outside.hostAddress, 8101)).toBe(b.hostname);
      // From a container on another portnet network, too.
      expect(await hostnameVia({ container: c.name }, outside.hostAddress, 8100)).toBe(a.hostname);
    }));

  it('11. same network: a peer reaches every port of a container, exposed or not', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x11', '198.18.31.0/24');
      const [a, b] = await Promise.all([web(local, net.name, { expose: '8110:80', ports: [80, 81] }), web(local, net.name)]);
      expect(await hostnameVia({ container: b.name }, a.address, 80)).toBe(a.hostname);
      expect(await hostnameVia({ container: b.name }, a.address, 81)).toBe(a.hostname);
      expect(await hostnameVia({ container: a.name }, b.address, 80)).toBe(b.hostname);
      // Control: 81 really is unexposed (shut from outside).
      expect((await shut(outside, a.address, 81)).outcome).toBe('timeout');
    }));

  it('12. another portnet network reaches only the exposed ports', () =>
    scoped(async (local) => {
      const [net1, net2] = await Promise.all([portnetNetwork(local, 'x12a', '198.18.32.0/24'), portnetNetwork(local, 'x12b', '198.18.33.0/24')]);
      const [a, c] = await Promise.all([web(local, net1.name, { expose: '8120:80', ports: [80, 81] }), web(local, net2.name)]);
      expect(await hostnameVia({ container: c.name }, a.address, 80)).toBe(a.hostname);
      expect(await hostnameVia({ container: c.name }, outside.hostAddress, 8120)).toBe(a.hostname);
      // Not the unexposed port; nor the other way round (c exposes nothing).
      const [p81, back] = await Promise.all([shut({ container: c.name }, a.address, 81), shut({ container: a.name }, c.address, 80)]);
      expect(p81.outcome, p81.detail).toBe('timeout');
      expect(back.outcome, back.detail).toBe('timeout');
      // Controls: 81 is up (host), and c is a working client (it just reached port 80).
      expect(await hostnameVia('host', a.address, 81)).toBe(a.hostname);
    }));

  it('13. a network with com.example.icc=false: peers reach only exposed ports', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x13', '198.18.34.0/24', { 'com.example.icc': 'false' });
      const [a, b] = await Promise.all([web(local, net.name, { expose: '8130:80', ports: [80, 81] }), web(local, net.name)]);
      expect(await hostnameVia({ container: b.name }, a.address, 80)).toBe(a.hostname);
      expect(await hostnameVia({ container: b.name }, outside.hostAddress, 8130)).toBe(a.hostname);
      const [p81, back] = await Promise.all([shut({ container: b.name }, a.address, 81), shut({ container: a.name }, b.address, 80)]);
      expect(p81.outcome, p81.detail).toBe('timeout');
      expect(back.outcome, back.detail).toBe('timeout');
      expect(await hostnameVia('host', a.address, 81)).toBe(a.hostname);
      expect(await hostnameVia('host', b.address, 80)).toBe(b.hostname);
    }));

  it('14. a second claim on a held host port fails its docker run, naming the port and the holder', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x14', '198.18.35.0/24');
      const a = await web(local, net.name, { expose: '8140:80' });
      const holder = (await containerEndpoint(a.name, net.name)).slice(0, 12);
      const viaOption = await runRefused(local, { network: { name: net.name, driverOpts: { [EXPOSE]: '8140:80' } } });
      const viaPublish = await runRefused(local, { network: net.name, publish: ['8140:8000'] });
      for (const r of [viaOption, viaPublish]) {
        step(`refused as expected: ${r.stderr.trim()}`);
        expect(r.stderr).toContain('host port 8140/tcp');
        expect(r.stderr).toContain(`endpoint ${holder}`);
        expect((await inspectContainer(r.name)).State.Running).toBe(false);
      }
      // Another protocol on the same port number is no conflict.
      const udp = await runContainer({ network: { name: net.name, driverOpts: { [EXPOSE]: '8140:53/udp' } } }, local);
      expect((await inspectContainer(udp.name)).State.Running).toBe(true);
      // Not last-write-wins: the holder still gets the traffic, and only it and the udp one are attached.
      expect(await hostnameVia(outside, outside.hostAddress, 8140)).toBe(a.hostname);
      expect((await attached(net.name)).sort()).toEqual([a.name, udp.name].sort());

      // All addresses overlap one address: a claim bound to the outside-facing address clashes with
      // 8140 on all addresses, and the other way round; 127.0.0.1 and that address do not clash.
      const bound = await runRefused(local, { network: net.name, publish: [`${outside.hostAddress}:8140:80`] });
      expect(bound.stderr).toContain('host port 8140/tcp');
      expect(bound.stderr).toContain(`endpoint ${holder}`);
      const b = await web(local, net.name, { publish: [`${outside.hostAddress}:8141:80`] });
      const bHolder = (await containerEndpoint(b.name, net.name)).slice(0, 12);
      const wide = await runRefused(local, { network: { name: net.name, driverOpts: { [EXPOSE]: '8141:80' } } });
      step(`refused as expected: ${wide.stderr.trim()}`);
      expect(wide.stderr).toContain('host port 8141/tcp');
      expect(wide.stderr).toContain(`endpoint ${bHolder}`);
      const lo = await web(local, net.name, { publish: ['127.0.0.1:8141:80'] });
      expect(await hostnameVia('host', '127.0.0.1', 8141)).toBe(lo.hostname);
      expect(await hostnameVia(outside, outside.hostAddress, 8141)).toBe(b.hostname);

      // Once the holder is gone, its port is free for the next claim.
      await removeContainer(a.name);
      const next = await web(local, net.name, { expose: '8140:80' });
      expect(await hostnameVia(outside, outside.hostAddress, 8140)).toBe(next.hostname);
    }));

  it('14b. concurrent claims on one host port: exactly one docker run wins', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x14b', '198.18.38.0/24');
      const names = Array.from({ length: 4 }, () => uniqueName('race'));
      const results = await Promise.all(
        names.map((name, i) =>
          runContainer(
            i % 2 === 0
              ? { name, network: { name: net.name, driverOpts: { [EXPOSE]: '8145:80' } }, cmd: httpdCmd([80]) }
              : { name, network: net.name, publish: ['8145:80'], cmd: httpdCmd([80]) },
            local,
          ).then(
            () => ({ name, ok: true, stderr: '' }),
            (e: unknown) => ({ name, ok: false, stderr: e instanceof CommandError ? e.result.stderr : String(e) }),
          ),
        ),
      );
      const winners = results.filter((r) => r.ok);
      expect(winners.map((w) => w.name)).toHaveLength(1);
      const winner = winners[0]!;
      const holder = (await containerEndpoint(winner.name, net.name)).slice(0, 12);
      for (const r of results.filter((x) => !x.ok)) {
        expect(r.stderr).toContain('host port 8145/tcp');
        expect(r.stderr).toContain(`endpoint ${holder}`);
      }
      expect(await attached(net.name)).toEqual([winner.name]);
      const address = await containerAddress(winner.name, net.name);
      await waitOpen(address, 80);
      expect(await hostnameVia(outside, outside.hostAddress, 8145)).toBe((await inspectContainer(winner.name)).Id.slice(0, 12));
    }));

  it('15. bad expose values are refused, quoting the item, and leave nothing on the network', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x15', '198.18.36.0/24');
      const cases: Array<[string, RegExp]> = [
        ['0', /item "0" .*port 0 is out of range 1-65535/],
        ['70000', /item "70000" .*port 70000 is out of range 1-65535/],
        ['90-80', /item "90-80" .*range 90-80 is reversed/],
        ['8000-8001:80-82', /item "8000-8001:80-82" .*differ in length/],
        ['80/icmp', /item "80\/icmp" .*unknown protocol "icmp"/],
        ['abc', /item "abc" .*"abc" is not a port number or range/],
        ['80;reboot', /item "80;reboot" .*"80;reboot" is not a port number or range/],
      ];
      const results = await Promise.all(
        cases.map(([value]) => runRefused(local, { network: { name: net.name, driverOpts: { [EXPOSE]: value } } })),
      );
      for (const [i, [value, want]] of cases.entries()) {
        const r = results[i]!;
        step(`expose=${value}: ${r.stderr.trim()}`);
        expect(r.stderr, `expose=${value}`).toMatch(want);
        expect((await inspectContainer(r.name)).State.Running, `expose=${value}`).toBe(false);
      }
      expect(await attached(net.name)).toEqual([]);
      // No veth of a refused endpoint is left behind (no other portnet endpoint exists at this point).
      expect((await kernelLeftovers()).links).toEqual([]);
      const netId = (await inspectNetwork(net.name)).Id;
      expect((await pluginState(plugin)).endpoints.filter((e) => e.networkId === netId)).toEqual([]);
      // Control: a good value on the same network works.
      const ok = await web(local, net.name, { expose: '8150:80' });
      expect(await hostnameVia(outside, outside.hostAddress, 8150)).toBe(ok.hostname);
    }));

  it('17. an exposure bound to one host address is reachable only through that address', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x17', '198.18.37.0/24');
      const a = await web(local, net.name, { publish: [`${outside.hostAddress}:8170:80`] });
      expect(await hostnameVia(outside, outside.hostAddress, 8170)).toBe(a.hostname);
      expect(await hostnameVia('host', outside.hostAddress, 8170)).toBe(a.hostname);
      const [lo, direct] = await Promise.all([shut('host', '127.0.0.1', 8170), shut(outside, a.address, 80)]);
      expectNotOpen(lo, 'host -> 127.0.0.1:8170');
      // Bound to one address: not open directly on the container address.
      expect(direct.outcome, direct.detail).toBe('timeout');
    }));

  it('18. -P and a -p host range get a host port picked by portnet, shown in its state and reachable', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x18', '198.18.39.0/24');
      const exposuresOf = async (c: Web): Promise<string[]> => {
        const ep = (await pluginState(plugin)).endpoints.find((e) => e.address === c.address);
        if (!ep) throw new Error(`no endpoint with address ${c.address} in the plugin's state`);
        return ep.exposures;
      };
      const hostPortOf = (exposures: string[], containerPort: number): number => {
        const hit = exposures.map((x) => /^\*:(\d+)→(\d+)\/tcp$/.exec(x)).find((m) => m && Number(m[2]) === containerPort);
        if (!hit) throw new Error(`no resolved tcp exposure of container port ${containerPort} in ${JSON.stringify(exposures)}`);
        return Number(hit[1]);
      };
      const a = await web(local, net.name, { extra: { publishAll: true, expose: ['80'] } });
      const ephemeral = hostPortOf(await exposuresOf(a), 80);
      expect(ephemeral).toBeGreaterThanOrEqual(49153);
      expect(ephemeral).toBeLessThanOrEqual(65535);
      expect(await hostnameVia(outside, outside.hostAddress, ephemeral)).toBe(a.hostname);

      const b = await web(local, net.name, { publish: ['8180-8181:80'] });
      const c = await web(local, net.name, { publish: ['8180-8181:80'] });
      const [pb, pc] = [hostPortOf(await exposuresOf(b), 80), hostPortOf(await exposuresOf(c), 80)];
      expect([pb, pc].sort()).toEqual([8180, 8181]);
      expect(await hostnameVia(outside, outside.hostAddress, pb)).toBe(b.hostname);
      expect(await hostnameVia(outside, outside.hostAddress, pc)).toBe(c.hostname);
      const full = await runRefused(local, { network: net.name, publish: ['8180-8181:80'] });
      expect(full.stderr).toContain('no free host port in 8180-8181');
      // The picked ports never move: a's port is the same after the others came and went.
      expect(hostPortOf(await exposuresOf(a), 80)).toBe(ephemeral);
    }));

  it('19. option details: comma-separated items, a host IP in the option, udp on localhost, and one port published twice', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x19', '198.18.40.0/24');
      // "8190:80,127.0.0.1:8191:81,8192:53/udp": commas inside a CSV field (the helper quotes it).
      const a = await web(local, net.name, { expose: '8190:80,127.0.0.1:8191:81,8192:53/udp', ports: [80, 81] });
      const echo = await startEchoServer({ container: a.name }, 'udp', 53);
      local.defer('stop udp echo 53', () => echo.stop());
      expect(await hostnameVia(outside, outside.hostAddress, 8190)).toBe(a.hostname);
      expect(await hostnameVia('host', '127.0.0.1', 8191)).toBe(a.hostname);
      expect(await udpExchange(outside, outside.hostAddress, 8192, 'udp-outside\n', 3000)).toBe('udp-outside\n');
      expect(await udpExchange('host', '127.0.0.1', 8192, 'udp-localhost\n', 3000)).toBe('udp-localhost\n');
      const [lo81, direct81] = await Promise.all([shut(outside, outside.hostAddress, 8191), shut(outside, a.address, 81)]);
      expectNotOpen(lo81, 'outside -> host address :8191 (bound to 127.0.0.1)');
      expect(direct81.outcome, direct81.detail).toBe('timeout');

      // One endpoint naming one host port twice (option and -p) is refused, not silently merged.
      const twice = await runRefused(local, { network: { name: net.name, driverOpts: { [EXPOSE]: '8193:80' } }, publish: ['8193:81'] });
      step(`refused as expected: ${twice.stderr.trim()}`);
      expect(twice.stderr).toContain('host port 8193/tcp');
      expect((await attached(net.name)).sort()).toEqual([a.name]);
    }));

  it('20. exposures survive a plugin restart and a container restart, and conflicts are still enforced', () =>
    scoped(async (local) => {
      const net = await portnetNetwork(local, 'x20', '198.18.41.0/24');
      const a = await web(local, net.name, { expose: '8200:80', ports: [80, 81] });
      const b = await web(local, net.name, { publish: ['8201:80'] });
      step('restart the plugin (SIGTERM)');
      await plugin.restart('SIGTERM');
      expect(await hostnameVia(outside, outside.hostAddress, 8200)).toBe(a.hostname);
      expect(await hostnameVia(outside, outside.hostAddress, 8201)).toBe(b.hostname);
      expect((await shut(outside, a.address, 81)).outcome).toBe('timeout');
      const dup = await runRefused(local, { network: net.name, publish: ['8200:80'] });
      expect(dup.stderr).toContain('host port 8200/tcp');

      step(`docker restart ${a.name}`);
      await docker(['restart', '-t', '1', a.name]);
      const address = await containerAddress(a.name, net.name);
      await waitOpen(address, 80);
      expect(await hostnameVia(outside, outside.hostAddress, 8200)).toBe(a.hostname);
      expect(await hostnameVia(outside, address, 80)).toBe(a.hostname);
      await waitOpen(address, 81);
      expect((await shut(outside, address, 81)).outcome).toBe('timeout');
      // Only the live endpoints are in the plugin's state: the restart did not leave the old one behind.
      const netId = (await inspectNetwork(net.name)).Id;
      expect((await pluginState(plugin)).endpoints.filter((e) => e.networkId === netId).map((e) => e.address).sort()).toEqual(
        [address, b.address].sort(),
      );
    }));

  it('16. once everything is removed, no set or map of the table holds an element and no pool route is left', async () => {
    const sets = await nftSets();
    expect(sets.size).toBeGreaterThan(0);
    expect(sets.has('exposed_direct')).toBe(true);
    const nonEmpty = [...sets].filter(([, elems]) => elems.length > 0).map(([name, elems]) => `${name}: ${JSON.stringify(elems)}`);
    expect(nonEmpty).toEqual([]);
    const left = await kernelLeftovers();
    expect(left.links).toEqual([]);
    expect(left.routes).toEqual([]);
    const state = await pluginState(plugin);
    expect(state.endpoints).toEqual([]);
    expect(state.networks).toEqual([]);
    expect(state.pools).toEqual([]);
    step(`exposure suite: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
