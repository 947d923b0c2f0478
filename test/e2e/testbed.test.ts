// Smoke test of the test bed itself (no portnet involved, except the last test, which needs dist/cli.js).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI,
  DOCKER,
  Cleanup,
  createOutsideHost,
  engineApiVersion,
  ensureTestbed,
  httpGet,
  listContainers,
  run,
  runContainer,
  runOnce,
  startEchoServer,
  startPlugin,
  step,
  sweepRun,
  tcpProbe,
  udpExchange,
  useCleanup,
  TEST_IMAGE,
} from './support/index.js';

async function ipOut(args: string[]): Promise<string> {
  return (await run('ip', args)).stdout;
}

describe('test bed', () => {
  const cleanup = useCleanup('each');

  beforeAll(async () => {
    await ensureTestbed();
  });
  afterAll(async () => {
    await sweepRun();
  });

  it('has a Docker Engine that answers', async () => {
    const api = await engineApiVersion();
    step(`docker engine API ${api}`);
    expect(api).toMatch(/^1\.\d+$/);
  });

  it('has the unreachable routes for the test ranges', async () => {
    // From the host, a connect to an unowned pool address fails at route lookup: no packet is sent.
    expect((await tcpProbe('host', '198.18.255.254', 80, 2000)).outcome).toBe('unreachable');
    expect(await ipOut(['-4', 'route', 'show', 'exact', '198.18.0.0/15', 'type', 'unreachable'])).toContain('unreachable 198.18.0.0/15');
    expect(await ipOut(['-4', 'route', 'show', 'exact', '198.51.100.0/24', 'type', 'unreachable'])).toContain('unreachable 198.51.100.0/24');
  });

  it('runs the busybox image (network none)', async () => {
    const r = await runOnce(['busybox', 'echo', 'hello from busybox']);
    expect(r.stdout.trim()).toBe('hello from busybox');
    const applets = (await runOnce(['busybox', '--list'])).stdout.split('\n');
    for (const a of ['sh', 'httpd', 'nc', 'wget', 'ip', 'ping', 'sleep', 'timeout']) expect(applets).toContain(a);
  });

  it('serves http inside a container, probed from the container namespace via nsenter', async () => {
    const c = await runContainer({ cmd: ['httpd', '-f', '-p', '80', '-h', '/www'] }, cleanup);
    const from = { container: c.name };
    let r = await tcpProbe(from, '127.0.0.1', 80, 2000);
    for (let i = 0; i < 20 && r.outcome !== 'open'; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await tcpProbe(from, '127.0.0.1', 80, 2000);
    }
    expect(r.outcome).toBe('open');
    expect(await httpGet(from, '127.0.0.1', 80, '/')).toEqual({ status: 200, body: 'portnet-test\n' });
    expect((await tcpProbe(from, '127.0.0.1', 81, 2000)).outcome).toBe('refused');
    expect(await listContainers()).toContain(c.name);
  });

  it('makes an outside host with routes only toward the host and test ranges', async () => {
    const o = await createOutsideHost('smoke', {}, cleanup);
    step(`outside host ${o.netns}: ${o.address} <-> host ${o.hostAddress} on ${o.hostLink}`);
    expect(o.hostLink.startsWith('pn')).toBe(false);

    const routes = (await o.exec('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout.trim().split('\n');
    for (const line of routes) {
      // local/broadcast routes of its own address and loopback are in table local; everything else must
      // be the host side's /32 or a test range via the host.
      const dest = line.replace(/^(local|broadcast) /, '').split(' ')[0]!;
      const ok = line.includes('table local') ? true : dest === o.hostAddress || dest === '198.18.0.0/15';
      expect(ok, `unexpected route in outside host: ${line}`).toBe(true);
    }
    expect(routes.some((l) => l.startsWith('default'))).toBe(false);
    const v6 = (await o.exec('ip', ['-6', 'route', 'show', 'table', 'all'])).stdout.trim();
    expect(v6).toBe('');

    const ping = await o.exec('busybox', ['ping', '-c', '2', '-W', '2', o.hostAddress]);
    expect(ping.stdout).toMatch(/2 (packets )?received/);

    // TCP from the outside host to a listener on the host side of its veth, and to a closed port.
    const server = net.createServer((s) => s.end('hi\n'));
    await new Promise<void>((res) => server.listen(0, o.hostAddress, () => res()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      expect((await tcpProbe(o, o.hostAddress, port)).outcome).toBe('open');
      expect((await tcpProbe(o, o.hostAddress, port === 1 ? 2 : 1)).outcome).toBe('refused');
      // Host to the outside host, TCP and UDP echo servers inside the namespace.
      const tcpEcho = await startEchoServer(o, 'tcp', 7007);
      cleanup.defer('tcp echo', () => tcpEcho.stop());
      expect((await tcpProbe('host', o.address, 7007)).outcome).toBe('open');
      const udpEcho = await startEchoServer(o, 'udp', 7008);
      cleanup.defer('udp echo', () => udpEcho.stop());
      expect(await udpExchange('host', o.address, 7008, 'ping-udp')).toBe('ping-udp');
      expect(await udpExchange(o, o.hostAddress, 9, 'nobody', 500)).toBeNull();
      // A filtered port (dropped inside the outside host) times out rather than being refused.
      await o.exec('nft', ['-f', '-'], {
        input: 'table inet tbsmoke {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 7010 drop\n }\n}\n',
      });
      expect((await tcpProbe('host', o.address, 7010, 700)).outcome).toBe('timeout');
      expect((await tcpProbe('host', o.address, 7011, 700)).outcome).toBe('refused');
    } finally {
      server.close();
    }
  });

  it('leaves no namespace, link, rule or container behind after cleanup', async () => {
    const c = new Cleanup();
    cleanup.defer('the local cleanup, if the test failed before running it', () => c.run());
    const o = await createOutsideHost('gone', { allowForward: true }, c);
    const userRules = async (): Promise<string> => (await run('iptables', ['-S', 'DOCKER-USER'])).stdout;
    expect(await userRules()).toContain(`-d 198.18.0.0/15 -i ${o.hostLink}`);
    await runContainer({}, c);
    expect(await ipOut(['netns', 'list'])).toContain(o.netns);
    await c.run();
    expect(await ipOut(['netns', 'list'])).not.toContain(o.netns);
    expect((await run('ip', ['link', 'show', 'dev', o.hostLink], { allowFail: true })).code).not.toBe(0);
    expect(await listContainers()).toEqual([]);
    expect(await ipOut(['-o', 'link', 'show'])).not.toMatch(/\btbo/);
    expect(await userRules()).not.toContain('portnet-testbed');
  });

  it.skipIf(!existsSync(CLI))('starts, restarts and stops the built plugin', async () => {
    const socketDir = mkdtempSync(join(tmpdir(), 'portnet-e2e-sock-'));
    cleanup.defer('rm socket dir', () => rmSync(socketDir, { recursive: true, force: true }));
    // A private socket outside /run/docker/plugins: Docker never sees this instance.
    const p = await startPlugin({ socket: join(socketDir, 'portnet-smoke.sock') }, cleanup);
    const a = await p.call('/Plugin.Activate');
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ Implements: expect.arrayContaining(['NetworkDriver', 'IpamDriver']) });
    await p.restart();
    expect((await p.call('/Plugin.Activate')).status).toBe(200);
    const end = await p.kill('SIGTERM');
    expect(end.signal === 'SIGTERM' || end.code === 0).toBe(true);
  });

  it('image is the one the test bed built', async () => {
    const r = await run(DOCKER, ['image', 'inspect', '-f', '{{index .Config.Labels "org.portnet.test.busybox-key"}}', TEST_IMAGE]);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{64}-r\d+$/);
  });
});
