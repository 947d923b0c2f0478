// The operator's tools end to end: `portnet ls`, `doctor` and /metrics against the real plugin, the
// real engine and the kernel. No traffic is sent: everything here reads state, rules and routes.
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it, beforeAll } from 'vitest';
import {
  Cleanup,
  CLI,
  createNetwork,
  E2E_DEFAULT_POOL,
  E2E_DRIVER,
  ensureTestbed,
  inspectContainer,
  removeContainer,
  run,
  runContainer,
  startPlugin,
  step,
  uniqueName,
  useCleanup,
  type PluginProcess,
  type RunResult,
  scoped,
} from './support/index.js';

const cleanup = useCleanup('all');
let plugin: PluginProcess;
let metricsPort: number;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  await ensureTestbed();
  metricsPort = await freePort();
  plugin = await startPlugin({ args: ['--default-pool', E2E_DEFAULT_POOL, '--metrics-port', String(metricsPort)], logLevel: 'debug' }, cleanup);
  cleanup.defer('portnet uninstall', async () => {
    await plugin.kill('SIGTERM');
    await run('node', [CLI, 'uninstall', '--state-dir', plugin.stateDir], { timeoutMs: 30_000 });
  });
  step(`plugin ${plugin.driver} serving on ${plugin.socket}, metrics on 127.0.0.1:${metricsPort}`);
});


function portnet(args: string[]): Promise<RunResult> {
  return run('node', [CLI, ...args, '--socket', plugin.socket], { allowFail: true, timeoutMs: 30_000 });
}

interface LsRow {
  network: string | null;
  networkId: string;
  container: string | null;
  containerId: string | null;
  endpoint: string;
  hostIf: string;
  address: string;
  exposures: Array<{ text: string; proto: string; hostIp: string | null; hostPort: number; containerPort: number; sources: string }>;
}

async function ls(): Promise<LsRow[]> {
  const r = await portnet(['ls', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as LsRow[];
}

/** `ls --json` once every listed container has a name (they are learnt from Docker in the background). */
async function lsNamed(count: number): Promise<LsRow[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const rows = await ls();
    if (rows.length === count && rows.every((r) => r.container !== null && r.containerId !== null)) return rows;
    if (Date.now() > deadline) throw new Error(`names not learnt within 15 s: ${JSON.stringify(rows.map((r) => [r.address, r.container]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Finding {
  check: string;
  status: 'ok' | 'warn' | 'problem';
  message: string;
  fix?: string;
  commands?: string[][];
}

async function doctor(): Promise<{ code: number; findings: Finding[]; text: string }> {
  const json = await portnet(['doctor', '--json']);
  const text = await portnet(['doctor']);
  expect(text.code).toBe(json.code);
  return { code: json.code, findings: (JSON.parse(json.stdout) as { findings: Finding[] }).findings, text: text.stdout };
}

const problems = (fs: Finding[]) => fs.filter((f) => f.status === 'problem');

/** Elements of one of portnet's nft maps, as `key : value` text, read straight from nft. */
async function nftMap(name: string): Promise<string[]> {
  const doc = JSON.parse((await run('nft', ['-j', 'list', 'map', 'inet', 'portnet', name])).stdout) as { nftables: Array<Record<string, unknown>> };
  const map = doc.nftables.find((o) => 'map' in o)?.map as { elem?: Array<[unknown, unknown]> } | undefined;
  const text = (x: unknown): string =>
    typeof x === 'object' && x !== null && 'concat' in x ? (x as { concat: unknown[] }).concat.map(text).join(' . ') : String(x);
  return (map?.elem ?? []).map(([k, v]) => `${text(k)} : ${text(v)}`);
}

function metrics(): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: plugin.socket, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

function metricsOverTcp(): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', timeout: 5000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('portnet ls, doctor and metrics on a real Docker Engine', () => {
  it('ls --json says what Docker and the kernel say: names, endpoints, addresses, exposures', () =>
    scoped(async (local) => {
      const net = await createNetwork(uniqueName('cli'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.60.0/24' }, local);
      const a = await runContainer({ network: { name: net.name, driverOpts: { 'com.example.expose': '18080:80 127.0.0.1:18081:81 15353:53/udp' } } }, local);
      const b = await runContainer({ network: net.name, publish: ['18443:443'] }, local);
      const c = await runContainer({ network: net.name, ip: '198.18.60.77' }, local);
      const rows = await lsNamed(3);

      const routes = (await run('ip', ['-4', 'route', 'show', 'proto', '91'])).stdout;
      for (const made of [a, b, c]) {
        const inspect = await inspectContainer(made.name);
        const attachment = inspect.NetworkSettings.Networks[net.name]!;
        const row = rows.find((r) => r.endpoint === attachment.EndpointID);
        expect(row, `${made.name} in ls`).toBeDefined();
        expect(row).toMatchObject({
          network: net.name,
          networkId: net.id,
          container: made.name,
          containerId: inspect.Id,
          address: attachment.IPAddress,
          hostIf: `pn${attachment.EndpointID.slice(0, 11)}`,
        });
        expect(routes).toMatch(new RegExp(`^${attachment.IPAddress.replaceAll('.', '\\.')} dev ${row!.hostIf} `, 'm'));
      }
      const byName = (n: string) => rows.find((r) => r.container === n)!;
      const [addrA, addrB] = [byName(a.name).address, byName(b.name).address];
      expect(byName(c.name).address).toBe('198.18.60.77');
      expect(byName(a.name).exposures.map((x) => [x.text, x.sources])).toEqual([
        ['*:18080 → 80/tcp', 'any'],
        ['127.0.0.1:18081 → 81/tcp', 'host'],
        ['*:15353 → 53/udp', 'any'],
      ]);
      expect(byName(b.name).exposures.map((x) => [x.text, x.sources])).toEqual([['*:18443 → 443/tcp', 'any']]);
      expect(byName(c.name).exposures).toEqual([]);

      // Every exposure ls shows is a DNAT element in the kernel, and there is no other for these containers.
      const listed = rows.flatMap((r) =>
        r.exposures.map((x) => (x.hostIp === null ? `${x.proto} . ${x.hostPort} : ${r.address} . ${x.containerPort}` : `${x.hostIp} . ${x.proto} . ${x.hostPort} : ${r.address} . ${x.containerPort}`)),
      );
      const kernel = [...(await nftMap('dnat_any')), ...(await nftMap('dnat_bound'))].filter((e) => e.includes(`: ${addrA} .`) || e.includes(`: ${addrB} .`));
      expect(kernel.sort()).toEqual(listed.sort());

      // The table people read names the containers.
      const text = await portnet(['ls']);
      expect(text.code).toBe(0);
      for (const made of [a, b, c]) {
        const row = byName(made.name);
        expect(text.stdout).toMatch(new RegExp(`^${net.name}\\s+${made.name}\\s+${row.endpoint.slice(0, 12)}\\s+${row.address.replaceAll('.', '\\.')}\\s`, 'm'));
      }
      expect(text.stdout).toContain('127.0.0.1:18081 → 81/tcp');

      // inspect by container name shows the live elements that implement it.
      const inspected = await portnet(['inspect', a.name]);
      expect(inspected.code, inspected.stderr).toBe(0);
      expect(inspected.stdout).toContain(`tcp . 18080 : ${addrA} . 80`);
      expect(inspected.stdout).not.toContain('MISSING');
      expect((await portnet(['inspect', 'no-such-thing-here'])).code).toBe(1);
    }));

  it('doctor is clean, finds a broken FORWARD hook and a lost unreachable route with fixes that work, and is clean again', () =>
    scoped(async (local) => {
      const pool = '198.18.61.0/24';
      const net = await createNetwork(uniqueName('doc'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: pool }, local);
      await runContainer({ network: { name: net.name, driverOpts: { 'com.example.expose': '18090:80' } } }, local);
      await lsNamed(1);

      const clean = await doctor();
      expect(problems(clean.findings), clean.text).toEqual([]);
      expect(clean.code).toBe(0);
      expect(clean.text).toMatch(/^no problems/m);

      // Whatever happens below, the accept and the route come back.
      const accept = ['DOCKER-USER', '-o', 'pn+', '-m', 'comment', '--comment', 'portnet', '-j', 'ACCEPT'];
      local.defer('restore portnet\'s DOCKER-USER accept', async () => {
        if ((await run('iptables', ['-w', '5', '-C', ...accept], { allowFail: true })).code !== 0) await run('iptables', ['-w', '5', '-I', accept[0]!, '1', ...accept.slice(1)]);
      });
      local.defer(`restore the unreachable route of ${pool}`, () => run('ip', ['route', 'replace', 'unreachable', pool, 'metric', '3999', 'proto', '91']));

      step('break: delete portnet\'s DOCKER-USER accept for traffic into endpoints');
      await run('iptables', ['-w', '5', '-D', ...accept]);
      let broken = await doctor();
      expect(broken.code).not.toBe(0);
      const hook = problems(broken.findings);
      expect(hook.map((f) => f.check)).toEqual(['docker-user']);
      expect(hook[0]!.message).toContain('-o pn+ -m comment --comment portnet -j ACCEPT');
      expect(hook[0]!.fix).toMatch(/restart portnet/);
      expect(broken.text).toMatch(/^PROBLEM\s+docker-user/m);
      expect(broken.text).toContain('iptables -w 5 -I DOCKER-USER 1 -o pn+ -m comment --comment portnet -j ACCEPT');
      for (const c of hook[0]!.commands!) await run(c[0]!, c.slice(1));
      expect(problems((await doctor()).findings)).toEqual([]);

      step(`break: delete the unreachable route of ${pool}`);
      await run('ip', ['route', 'del', 'unreachable', pool, 'metric', '3999', 'proto', '91']);
      broken = await doctor();
      expect(broken.code).not.toBe(0);
      const route = problems(broken.findings);
      expect(route.map((f) => f.check)).toEqual(['pool-routes']);
      expect(route[0]!.message).toContain(`pool ${pool} of network ${net.name} has no unreachable route`);
      expect(route[0]!.commands).toEqual([['ip', 'route', 'replace', 'unreachable', pool, 'metric', '3999', 'proto', '91']]);
      for (const c of route[0]!.commands!) await run(c[0]!, c.slice(1));

      const again = await doctor();
      expect(problems(again.findings), again.text).toEqual([]);
      expect(again.code).toBe(0);
    }));

  it('metrics move when containers start and stop, on the socket and on 127.0.0.1', () =>
    scoped(async (local) => {
      const net = await createNetwork(uniqueName('met'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.62.0/28' }, local);
      const join = '{call="NetworkDriver.Join",outcome="ok"}';
      const leave = '{call="NetworkDriver.Leave",outcome="ok"}';
      const before = await metrics();
      const names = [];
      for (let i = 0; i < 3; i++) names.push((await runContainer({ network: { name: net.name, driverOpts: { 'com.example.expose': `${18100 + i}:80` } } }, local)).name);
      const running = await metrics();
      expect(sample(running, 'portnet_requests_total', join)).toBe(sample(before, 'portnet_requests_total', join) + 3);
      expect(sample(running, 'portnet_endpoints')).toBe(sample(before, 'portnet_endpoints') + 3);
      expect(sample(running, 'portnet_exposures', '{proto="tcp"}')).toBe(sample(before, 'portnet_exposures', '{proto="tcp"}') + 3);
      expect(sample(running, 'portnet_pool_addresses_allocated', '{pool="198.18.62.0/28"}')).toBe(3);
      expect(sample(running, 'portnet_pool_addresses_capacity', '{pool="198.18.62.0/28"}')).toBe(14);
      expect(sample(running, 'portnet_request_duration_seconds_count', '{call="NetworkDriver.Join"}')).toBeGreaterThanOrEqual(3);

      for (const n of names) await removeContainer(n);
      const stopped = await metrics();
      expect(sample(stopped, 'portnet_requests_total', leave)).toBe(sample(running, 'portnet_requests_total', leave) + 3);
      expect(sample(stopped, 'portnet_endpoints')).toBe(sample(before, 'portnet_endpoints'));
      expect(sample(stopped, 'portnet_pool_addresses_allocated', '{pool="198.18.62.0/28"}')).toBe(0);

      const tcp = await metricsOverTcp();
      expect(sample(tcp, 'portnet_requests_total', leave)).toBe(sample(stopped, 'portnet_requests_total', leave));
    }));
});
