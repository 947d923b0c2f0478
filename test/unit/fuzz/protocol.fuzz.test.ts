// Hostile input, generated: over 10,000 requests to every endpoint of the Express app (fakes of the
// kernel and the store, in-process, over a Unix socket like Docker's) — wrong types, missing and
// extra fields, huge and deeply nested bodies, non-JSON bytes, unicode, unknown IDs, and realistic
// calls replayed and sent out of order. The plugin must never crash, always answer JSON, answer
// every failure with HTTP 500 and an `Err` (404 + `Err` for a path it does not implement), leave the
// state and the fake kernel exactly as they were when a request fails, and keep its invariants
// (no address held twice, kernel = state) after every request.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFirewallModel } from '../../../src/network/firewallModel.js';
import { fakePlugin } from '../support/plugin.js';

type Fake = Awaited<ReturnType<typeof fakePlugin>>;

const ROUTES = [
  '/Plugin.Activate',
  '/IpamDriver.GetCapabilities',
  '/IpamDriver.GetDefaultAddressSpaces',
  '/IpamDriver.RequestPool',
  '/IpamDriver.ReleasePool',
  '/IpamDriver.RequestAddress',
  '/IpamDriver.ReleaseAddress',
  '/NetworkDriver.GetCapabilities',
  '/NetworkDriver.CreateNetwork',
  '/NetworkDriver.DeleteNetwork',
  '/NetworkDriver.AllocateNetwork',
  '/NetworkDriver.FreeNetwork',
  '/NetworkDriver.CreateEndpoint',
  '/NetworkDriver.DeleteEndpoint',
  '/NetworkDriver.EndpointOperInfo',
  '/NetworkDriver.Join',
  '/NetworkDriver.Leave',
  '/NetworkDriver.ProgramExternalConnectivity',
  '/NetworkDriver.RevokeExternalConnectivity',
  '/NetworkDriver.DiscoverNew',
  '/NetworkDriver.DiscoverDelete',
] as const;
const UNKNOWN_PATHS = ['/NetworkDriver.Nope', '/IpamDriver.', '/', '/..%2F..%2Fetc%2Fpasswd', '/%00', '/Plugin.Activate/x', '/%E2%80%AE', '/NetworkDriver.CreateNetwork%20'];

// ------------------------------------------------------------------ generators

const NETS = ['a1', 'b2'].map((c) => c.repeat(32));
const EPS = ['c1', 'c2', 'd3', 'e4'].map((c) => c.repeat(32));
const POOLS = ['198.18.5.0/24', '198.18.6.0/29', '198.18.5.0/25', '198.18.7.0/30'];

const DEEP = `{"NetworkID":"${NETS[0]}","Options":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
const VERY_DEEP = '['.repeat(200_000) + ']'.repeat(200_000);
const HUGE_STRING = JSON.stringify({ PoolID: 'x'.repeat(1_100_000) });
const BIG_BUT_ALLOWED = JSON.stringify({ Pool: '198.18.5.0/24', Options: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, 'v'.repeat(20)])) });

const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\ud800',
    '\u202e\u0000',
    '😀'.repeat(40),
    '../../etc/passwd',
    '$(reboot)',
    '`id`',
    '; nft flush ruleset',
    '198.18.5.1/33',
    '198.18.5.256',
    '198.18.5.0/24\n',
    '0.0.0.0/0',
    '::1',
    'fd00::/64',
    '0x0a.0.0.1',
    '010.0.0.1',
    'pn0123456789a',
    'A'.repeat(64),
    'G'.repeat(64),
    'a'.repeat(65_536),
    '__proto__',
    'constructor',
  ),
);
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.constantFrom(0, -1, 1e308, Number.MAX_SAFE_INTEGER + 2) },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 3, maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom([], {}, [[]], { __proto__: { x: 1 } }, { constructor: 'x' }) },
);

/** Usually a plausible value, sometimes hostile, sometimes absent. */
function maybe<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight: 8, arbitrary: arb }, { weight: 1, arbitrary: hostile }, { weight: 1, arbitrary: fc.constant(undefined) });
}

const id = (known: string[]) => fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-f]{64}$/) });
const netId = id(NETS);
const epId = id(EPS);
const poolId = fc.constantFrom(...POOLS, 'portnet-local', '');
const address = fc.oneof(
  fc.integer({ min: 0, max: 9 }).map((n) => `198.18.5.${n}`),
  fc.constantFrom('198.18.6.1', '198.18.6.6', '198.18.6.7', '198.18.7.1', '198.18.7.2', '169.254.1.1', '0.0.0.0', ''),
);
const prefixed = fc.tuple(address, fc.constantFrom(32, 24, 29, 31, 0)).map(([a, p]) => (a === '' ? '' : `${a}/${p}`));
const portmap = fc.array(
  fc.record({
    Proto: maybe(fc.constantFrom(6, 17, 132, 1)),
    IP: fc.constant(''),
    Port: maybe(fc.constantFrom(80, 53, 0, 70000)),
    HostIP: maybe(fc.constantFrom('', '127.0.0.1', '198.51.100.1', '::1')),
    HostPort: maybe(fc.constantFrom(0, 8080, 8081, 49153)),
    HostPortEnd: maybe(fc.constantFrom(0, 8080, 8082)),
  }),
  { maxLength: 3 },
);
const exposeValue = fc.constantFrom('80', '8080:80', '8080:80 53/udp', '127.0.0.1:8082:80', '9000-9002:9000-9002', '80,81', '0', '70000', '$(reboot)', '8081:80/icmp', '');
const endpointOptions = fc.oneof(
  fc.constant({}),
  fc.record({ 'com.example.expose': maybe(exposeValue) }),
  fc.record({ 'com.docker.network.portmap': maybe(portmap) }),
  fc.record({ 'com.example.expose': exposeValue, 'com.docker.network.portmap': portmap, 'com.docker.network.endpoint.exposedports': fc.constant([]) }),
);
const portmapOptions = fc.oneof(fc.constant({}), fc.record({ 'com.docker.network.portmap': maybe(portmap) }));

const bodies: Record<(typeof ROUTES)[number], fc.Arbitrary<unknown>> = {
  '/Plugin.Activate': maybe(fc.constant(undefined)),
  '/IpamDriver.GetCapabilities': maybe(fc.constant(undefined)),
  '/IpamDriver.GetDefaultAddressSpaces': maybe(fc.constant(undefined)),
  '/IpamDriver.RequestPool': fc.record(
    {
      AddressSpace: maybe(fc.constantFrom('', 'portnet-local', 'other')),
      Pool: maybe(fc.constantFrom('', ...POOLS, '198.18.5.1/24', '10.0.0.0/8', 'fd00::/64')),
      SubPool: maybe(fc.constantFrom('', '198.18.5.0/26', '198.18.9.0/26')),
      Options: maybe(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 })),
      V6: maybe(fc.boolean()),
    },
    { requiredKeys: [] },
  ),
  '/IpamDriver.ReleasePool': fc.record({ PoolID: maybe(poolId) }, { requiredKeys: [] }),
  '/IpamDriver.RequestAddress': fc.record(
    {
      PoolID: maybe(poolId),
      Address: maybe(address),
      Options: maybe(fc.constantFrom({}, null, { RequestAddressType: 'com.docker.network.gateway' }, { 'com.docker.network.endpoint.macaddress': 'x' })),
    },
    { requiredKeys: [] },
  ),
  '/IpamDriver.ReleaseAddress': fc.record({ PoolID: maybe(poolId), Address: maybe(address) }, { requiredKeys: [] }),
  '/NetworkDriver.GetCapabilities': maybe(fc.constant(undefined)),
  '/NetworkDriver.CreateNetwork': fc.record(
    {
      NetworkID: maybe(netId),
      Options: maybe(
        fc.constantFrom(
          {},
          { 'com.docker.network.generic': {} },
          { 'com.docker.network.generic': { 'com.example.icc': 'false' } },
          { 'com.docker.network.generic': { 'com.example.bogus': '1' } },
          { 'com.docker.network.generic': { 'com.example.masquerade': 'perhaps' } },
          { 'com.docker.network.generic': 'x' },
          { 'com.docker.network.internal': true },
        ),
      ),
      IPv4Data: maybe(fc.array(fc.record({ AddressSpace: fc.constant('portnet-local'), Pool: maybe(fc.constantFrom(...POOLS, '198.18.5.1/24')) }), { maxLength: 2 })),
      IPv6Data: maybe(fc.constantFrom([], [{ Pool: 'fd00::/64' }], null)),
    },
    { requiredKeys: [] },
  ),
  '/NetworkDriver.DeleteNetwork': fc.record({ NetworkID: maybe(netId) }, { requiredKeys: [] }),
  '/NetworkDriver.AllocateNetwork': fc.record({ NetworkID: maybe(netId), Options: maybe(fc.constant({})) }, { requiredKeys: [] }),
  '/NetworkDriver.FreeNetwork': fc.record({ NetworkID: maybe(netId) }, { requiredKeys: [] }),
  '/NetworkDriver.CreateEndpoint': fc.record(
    {
      NetworkID: maybe(netId),
      EndpointID: maybe(epId),
      Interface: maybe(
        fc.record(
          { Address: maybe(prefixed), AddressIPv6: maybe(fc.constantFrom('', 'fd00::2/64')), MacAddress: maybe(fc.constantFrom('', '02:42:c6:12:05:02', 'zz:zz')) },
          { requiredKeys: [] },
        ),
      ),
      Options: maybe(endpointOptions),
    },
    { requiredKeys: [] },
  ),
  '/NetworkDriver.DeleteEndpoint': fc.record({ NetworkID: maybe(netId), EndpointID: maybe(epId) }, { requiredKeys: [] }),
  '/NetworkDriver.EndpointOperInfo': fc.record({ NetworkID: maybe(netId), EndpointID: maybe(epId) }, { requiredKeys: [] }),
  '/NetworkDriver.Join': fc.record(
    { NetworkID: maybe(netId), EndpointID: maybe(epId), SandboxKey: maybe(fc.constantFrom('/var/run/docker/netns/0123456789ab', '')), Options: maybe(portmapOptions) },
    { requiredKeys: [] },
  ),
  '/NetworkDriver.Leave': fc.record({ NetworkID: maybe(netId), EndpointID: maybe(epId) }, { requiredKeys: [] }),
  '/NetworkDriver.ProgramExternalConnectivity': fc.record({ NetworkID: maybe(netId), EndpointID: maybe(epId), Options: maybe(portmapOptions) }, { requiredKeys: [] }),
  '/NetworkDriver.RevokeExternalConnectivity': fc.record({ NetworkID: maybe(netId), EndpointID: maybe(epId) }, { requiredKeys: [] }),
  '/NetworkDriver.DiscoverNew': fc.record({ DiscoveryType: maybe(fc.constantFrom(1, 2)), DiscoveryData: fc.anything({ maxDepth: 2 }) }, { requiredKeys: [] }),
  '/NetworkDriver.DiscoverDelete': fc.record({ DiscoveryType: maybe(fc.constantFrom(1, 2)), DiscoveryData: fc.anything({ maxDepth: 2 }) }, { requiredKeys: [] }),
};

interface Req {
  method: string;
  path: string;
  /** Bytes on the wire; undefined sends no body at all. */
  raw: string | Buffer | undefined;
}

const jsonRequest = fc.constantFrom(...ROUTES).chain((path) => bodies[path].map((body): Req => ({ method: 'POST', path, raw: body === undefined ? undefined : JSON.stringify(body) })));
const oddRequest: fc.Arbitrary<Req> = fc.oneof(
  fc.record({ method: fc.constant('POST'), path: fc.constantFrom(...ROUTES), raw: fc.oneof(fc.string(), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))) }),
  fc.record({ method: fc.constant('POST'), path: fc.constantFrom(...ROUTES), raw: fc.constantFrom(DEEP, VERY_DEEP, HUGE_STRING, BIG_BUT_ALLOWED, '\ufeff{}', 'null', '[]', '"x"', '1', '{"NetworkID":', '{}{}', Buffer.from([0xff, 0xfe, 0x7b, 0x7d])) }),
  fc.record({ method: fc.constantFrom('POST', 'GET', 'PUT', 'DELETE'), path: fc.constantFrom(...UNKNOWN_PATHS, ...ROUTES), raw: fc.constantFrom(undefined, '{}') }),
);
const single = fc.oneof({ weight: 9, arbitrary: jsonRequest }, { weight: 1, arbitrary: oddRequest });

const post = (path: string, body?: unknown): Req => ({ method: 'POST', path, raw: body === undefined ? undefined : JSON.stringify(body) });

/** `docker network create`, as Docker sends it (sometimes cut short). */
/** A network ID with its pool: usually the pair Docker would send, sometimes a mismatch. */
const netAndPool = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: NETS.length - 1 }).map((i) => ({ net: NETS[i]!, pool: POOLS[i]! })) },
  { weight: 1, arbitrary: fc.record({ net: fc.constantFrom(...NETS), pool: fc.constantFrom(...POOLS) }) },
);

const networkFlow = fc
  .record({ np: netAndPool, icc: fc.boolean(), cut: fc.integer({ min: 1, max: 3 }) })
  .map(({ np: { net, pool }, icc, cut }) =>
    [
      post('/IpamDriver.RequestPool', { AddressSpace: 'portnet-local', Pool: pool, SubPool: '', Options: {}, V6: false }),
      post('/NetworkDriver.CreateNetwork', {
        NetworkID: net,
        Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': icc ? {} : { 'com.example.icc': 'false' } },
        IPv4Data: [{ AddressSpace: 'portnet-local', Pool: pool, Gateway: '169.254.1.1/32' }],
        IPv6Data: [],
      }),
      post('/IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: null }),
    ].slice(0, cut + 1),
  );

/** A container's life on a network, as Docker sends it, cut short anywhere; steps may be replayed. */
const endpointFlow = fc
  .record({
    np: netAndPool,
    ep: fc.constantFrom(...EPS),
    host: fc.integer({ min: 1, max: 9 }),
    options: endpointOptions,
    portmap: portmapOptions,
    cut: fc.integer({ min: 1, max: 9 }),
    replay: fc.integer({ min: 0, max: 8 }),
  })
  .map(({ np: { net, pool }, ep, host, options, portmap, cut, replay }) => {
    const address = `${pool.slice(0, pool.lastIndexOf('.'))}.${host}`;
    const steps = [
      post('/IpamDriver.RequestAddress', { PoolID: pool, Address: address, Options: null }),
      post('/NetworkDriver.CreateEndpoint', { NetworkID: net, EndpointID: ep, Interface: { Address: `${address}/32`, AddressIPv6: '', MacAddress: '' }, Options: options }),
      post('/NetworkDriver.Join', { NetworkID: net, EndpointID: ep, SandboxKey: `/var/run/docker/netns/${ep.slice(0, 12)}`, Options: portmap }),
      post('/NetworkDriver.ProgramExternalConnectivity', { NetworkID: net, EndpointID: ep, Options: portmap }),
      post('/NetworkDriver.EndpointOperInfo', { NetworkID: net, EndpointID: ep }),
      post('/NetworkDriver.RevokeExternalConnectivity', { NetworkID: net, EndpointID: ep }),
      post('/NetworkDriver.Leave', { NetworkID: net, EndpointID: ep }),
      post('/NetworkDriver.DeleteEndpoint', { NetworkID: net, EndpointID: ep }),
      post('/IpamDriver.ReleaseAddress', { PoolID: pool, Address: address }),
    ].slice(0, cut);
    return replay < steps.length ? [...steps, steps[replay]!] : steps;
  });

/** `docker network rm`: release the pool, then DeleteNetwork. */
const removeFlow = netAndPool.map(({ net, pool }) => [post('/IpamDriver.ReleasePool', { PoolID: pool }), post('/NetworkDriver.DeleteNetwork', { NetworkID: net })]);

const item: fc.Arbitrary<Req[]> = fc.oneof(
  { weight: 6, arbitrary: single.map((r) => [r]) },
  { weight: 1, arbitrary: networkFlow },
  { weight: 4, arbitrary: endpointFlow },
  { weight: 1, arbitrary: removeFlow },
);

// ------------------------------------------------------------------ the plugin under test

let current: Fake;
let server: http.Server;
let dir: string;
let socketPath: string;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'portnet-fuzz-'));
  socketPath = join(dir, 'fuzz.sock');
  server = http.createServer((req, res) => current.app(req, res));
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});
afterAll(async () => {
  agent.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

function send(r: Req): Promise<{ status: number; text: string; type: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { Accept: 'application/vnd.docker.plugins.v1.2+json' };
    if (r.raw !== undefined) headers['Content-Length'] = Buffer.byteLength(r.raw);
    const req = http.request({ socketPath, path: r.path, method: r.method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), type: String(res.headers['content-type']) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.raw);
  });
}

/** Everything a failed request must leave as it was: the stored rows, the mirror, the fake kernel. */
function world(p: Fake): unknown {
  return {
    store: [...p.store.data].sort(),
    mirror: p.state.allKeys().map((k) => [k, p.state.get(k)]),
    links: [...p.links.links].sort(),
    routes: [...p.links.endpointRoutes].sort(),
    pools: [...p.links.poolRoutes].sort(),
    rules: p.firewall.model,
  };
}

function expectInvariants(p: Fake, where: string): void {
  const eps = p.state.endpoints();
  const addresses = eps.map((e) => e.address);
  expect(new Set(addresses).size, `${where}: an address held by two endpoints`).toBe(addresses.length);
  for (const e of eps) expect(p.state.network(e.networkId), `${where}: endpoint of a missing network`).toBeDefined();
  const hostIfs = new Set(eps.map((e) => e.hostIf));
  for (const l of p.links.links.keys()) expect(hostIfs.has(l), `${where}: link ${l} without an endpoint`).toBe(true);
  for (const e of eps) if (e.joined) expect(p.links.links.has(e.hostIf), `${where}: joined endpoint without its link`).toBe(true);
  expect([...p.links.poolRoutes].sort(), `${where}: pool routes`).toEqual([...new Set(p.state.networks().flatMap((n) => [...n.pools, ...(n.pools6 ?? [])]))].sort());
  if (p.firewall.model !== undefined || p.state.networks().length > 0) {
    // The rules in the kernel are the state's: every network, every joined endpoint, and nothing
    // that is not in the state. (CreateEndpoint commits without a firewall change; the endpoint's
    // rules go in with Join, so an endpoint not joined yet may be absent from the kernel.)
    const want = buildFirewallModel(p.state.networks(), p.state.endpoints());
    const have = p.firewall.model ?? { networks: [], endpoints: [] };
    expect(have.networks, `${where}: networks in the rules`).toEqual(want.networks);
    for (const e of have.endpoints) expect(e, `${where}: rules of endpoint ${e.id.slice(0, 4)}`).toEqual(want.endpoints.find((w) => w.id === e.id));
    const joined = new Set(eps.filter((e) => e.joined).map((e) => e.id));
    for (const w of want.endpoints) if (joined.has(w.id)) expect(have.endpoints.map((e) => e.id), `${where}: joined endpoint without rules`).toContain(w.id);
  }
  const ports = eps.flatMap((e) => e.exposures.map((x) => `${x.resolved.hostIp ?? '*'} ${x.resolved.proto}/${x.resolved.hostPort}`));
  expect(new Set(ports).size, `${where}: a host port held twice`).toBe(ports.length);
  // The mirror is exactly what the store holds (a failed commit never half-updates it).
  expect(p.state.allKeys(), `${where}: mirror = store`).toEqual([...p.store.data.keys()].sort());
  for (const pool of p.state.pools()) {
    const held = p.state.allocations(pool.id).map((a) => a.address);
    expect(new Set(held).size, `${where}: an address allocated twice`).toBe(held.length);
    expect(p.state.allocationCount(pool.id), `${where}: allocation count`).toBe(held.length);
  }
}

let sent = 0;
const outcomes = new Map<string, number>();

async function check(r: Req): Promise<void> {
  const before = world(current);
  const res = await send(r);
  sent++;
  const where = `${r.method} ${r.path} ${typeof r.raw === 'string' ? r.raw.slice(0, 200) : String(r.raw)}`;
  let body: unknown;
  expect(() => (body = JSON.parse(res.text)), `${where}: answer is not JSON: ${res.text.slice(0, 200)}`).not.toThrow();
  expect(res.type, where).toMatch(/json/);
  const known = r.method === 'POST' && (ROUTES as readonly string[]).includes(r.path);
  expect(res.status, `${where}: ${res.text.slice(0, 300)}`).toBe(res.status === 200 ? 200 : known ? 500 : 404);
  if (res.status === 200) {
    expect(body !== null && typeof body === 'object' && !Array.isArray(body), `${where}: 200 with ${res.text.slice(0, 200)}`).toBe(true);
    expect((body as { Err?: unknown }).Err, where).toBeUndefined();
  } else {
    const err = (body as { Err?: unknown }).Err;
    expect(typeof err === 'string' && err.length > 0, `${where}: failure without Err: ${res.text.slice(0, 200)}`).toBe(true);
    expect(world(current), `${where}: a failed request changed something (${String(err).slice(0, 200)})`).toEqual(before);
  }
  const key = `${r.path} ${res.status}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  expectInvariants(current, where);
}

describe('hostile input to every endpoint of the app', () => {
  it('never crashes; always JSON; Err and no change on failure; invariants after every request (>= 10,000 requests)', async () => {
    await fc.assert(
      fc.asyncProperty(networkFlow, fc.array(item, { minLength: 1, maxLength: 30 }), fc.boolean(), async (setup, items, replay) => {
        current = await fakePlugin();
        const requests = [...setup, ...items.flat()];
        // Out of order by construction; replayed by chance, in flows, or as a whole second pass.
        for (const r of replay ? [...requests, ...requests] : requests) await check(r);
      }),
      { numRuns: 400, seed: Number(process.env.PORTNET_FUZZ_SEED ?? Date.now() % 2 ** 31), verbose: 1 },
    );
    const ok = [...outcomes].filter(([k]) => k.endsWith(' 200')).reduce((n, [, v]) => n + v, 0);
    console.info(`fuzz: ${sent} requests, ${ok} answered 200, ${sent - ok} refused`);
    expect(sent).toBeGreaterThanOrEqual(10_000);
    // The generators reach deep into the lifecycle, not just the validation layer.
    for (const path of ['/IpamDriver.RequestPool', '/IpamDriver.RequestAddress', '/NetworkDriver.CreateNetwork', '/NetworkDriver.CreateEndpoint', '/NetworkDriver.Join', '/NetworkDriver.ProgramExternalConnectivity', '/NetworkDriver.Leave', '/NetworkDriver.DeleteEndpoint', '/NetworkDriver.DeleteNetwork', '/IpamDriver.ReleaseAddress', '/IpamDriver.ReleasePool']) {
      expect(outcomes.get(`${path} 200`) ?? 0, `${path} never succeeded`).toBeGreaterThan(20);
    }
  }, 300_000);
});

describe('bodies no generator should be trusted to reach', () => {
  it('every route gets each pathological body: huge, deeply nested, not UTF-8, not an object, cut short', async () => {
    current = await fakePlugin();
    const specials: Array<string | Buffer | undefined> = [
      undefined,
      '',
      DEEP,
      VERY_DEEP,
      `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      HUGE_STRING,
      BIG_BUT_ALLOWED,
      '\ufeff{}',
      'null',
      '[]',
      '"x"',
      '1e400',
      '{"NetworkID":',
      '{}{}',
      '{"__proto__":{"NetworkID":"x"}}',
      Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
      Buffer.from([0xc0, 0x80]),
    ];
    const messages = new Set<string>();
    for (const path of ROUTES) {
      for (const raw of specials) await check({ method: 'POST', path, raw });
    }
    // The plugin still serves normal requests afterwards.
    const r = await send({ method: 'POST', path: '/NetworkDriver.GetCapabilities', raw: undefined });
    expect(JSON.parse(r.text)).toEqual({ Scope: 'local', ConnectivityScope: 'local' });
    for (const raw of [DEEP, VERY_DEEP, HUGE_STRING]) {
      const res = await send({ method: 'POST', path: '/NetworkDriver.CreateNetwork', raw });
      messages.add((JSON.parse(res.text) as { Err: string }).Err.slice(0, 120));
    }
    expect([...messages].join('\n')).toMatch(/too large/);
  }, 60_000);
});
