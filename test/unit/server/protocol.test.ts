import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { fakePlugin, loadTrace } from '../support/plugin.js';

const NET = 'a3b4c45ec0d29c189f32cc1a3283f880f8565a727a80d75ea7d039597c6f4c2d';
const EP = '9f6f8eda4a7711fc3cf21b9bd1f131d05413b716aa5cc6a4f77ec2152531af46';

/**
 * The trace's network was made with `-o com.example.netopt=1`, a key portnet does not know; portnet
 * refuses unknown com.example.* options (a misspelt policy must not pass silently), so the replay
 * uses a real option there. The refusal itself is tested below.
 */
function replayBody(body: Record<string, unknown>, poolId: string): string {
  return JSON.stringify(body)
    .replaceAll('"PoolID":"p1"', `"PoolID":${JSON.stringify(poolId)}`)
    .replace('"com.example.netopt":"1"', '"com.example.icc":"true"');
}

/** POSTs like Docker does: no Content-Type, raw JSON bytes (or nothing). */
function call(app: Parameters<typeof request>[0], path: string, body?: unknown | string) {
  const req = request(app).post(path).set('Accept', 'application/vnd.docker.plugins.v1.2+json').unset('Content-Type');
  if (body === undefined) return req;
  return req.send(Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)));
}

describe('handshake', () => {
  it('answers Plugin.Activate with both interfaces, from an empty body', async () => {
    const { app } = await fakePlugin();
    const res = await call(app, '/Plugin.Activate');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
  });

  it('reports local scope and the IPAM capabilities and address spaces', async () => {
    const { app } = await fakePlugin();
    expect(JSON.parse((await call(app, '/NetworkDriver.GetCapabilities')).text)).toEqual({ Scope: 'local', ConnectivityScope: 'local' });
    expect(JSON.parse((await call(app, '/IpamDriver.GetCapabilities')).text)).toEqual({ RequiresMACAddress: false, RequiresRequestReplay: false });
    expect(JSON.parse((await call(app, '/IpamDriver.GetDefaultAddressSpaces')).text)).toEqual({
      LocalDefaultAddressSpace: 'portnet-local',
      GlobalDefaultAddressSpace: 'portnet-global',
    });
  });

  it('answers 404 with Err for a method it does not implement', async () => {
    const { app } = await fakePlugin();
    const res = await call(app, '/NetworkDriver.Frobnicate', {});
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text).Err).toMatch(/NetworkDriver.Frobnicate/);
  });
});

describe('calls Docker makes only in swarm or cluster setups', () => {
  it('answers DiscoverNew/DiscoverDelete with {} and AllocateNetwork/FreeNetwork as a local driver', async () => {
    const { app, state } = await fakePlugin();
    const discovery = { DiscoveryType: 1, DiscoveryData: { Address: '198.51.100.9', BindAddress: '', Self: false } };
    expect(JSON.parse((await call(app, '/NetworkDriver.DiscoverNew', discovery)).text)).toEqual({});
    expect(JSON.parse((await call(app, '/NetworkDriver.DiscoverDelete', discovery)).text)).toEqual({});
    const alloc = await call(app, '/NetworkDriver.AllocateNetwork', { NetworkID: NET, Options: {}, IPv4Data: [], IPv6Data: [] });
    expect(JSON.parse(alloc.text)).toEqual({ Options: {} });
    expect(JSON.parse((await call(app, '/NetworkDriver.FreeNetwork', { NetworkID: NET })).text)).toEqual({});
    expect(state.allKeys()).toEqual([]);
  });
});

describe('the Docker 20.10 trace, replayed', () => {
  it('answers every recorded request with 200 and leaves nothing behind at the end', async () => {
    const plugin = await fakePlugin();
    let poolId = '';
    const seen: Array<[string, unknown]> = [];
    for (const { path, body } of loadTrace()) {
      const res = await call(plugin.app, path, replayBody(body, poolId));
      expect(res.status, `${path} ${res.text}`).toBe(200);
      const answer = JSON.parse(res.text) as Record<string, unknown>;
      seen.push([path, answer]);
      if (path === '/IpamDriver.RequestPool') poolId = answer.PoolID as string;
      if (path === '/NetworkDriver.Join') {
        // While joined, the endpoint's veth and /32 route exist.
        expect(plugin.links.links.size).toBeGreaterThan(0);
      }
    }
    const pool = seen.find(([p]) => p === '/IpamDriver.RequestPool')![1];
    expect(pool).toEqual({ PoolID: '198.18.9.0/24', Pool: '198.18.9.0/24', Data: { 'com.docker.network.gateway': '169.254.1.1/32' } });
    const firstAddress = seen.filter(([p]) => p === '/IpamDriver.RequestAddress')[2]![1];
    // The first dynamic address comes from --ip-range 198.18.9.128/25.
    expect(firstAddress).toEqual({ Address: '198.18.9.128/32', Data: {} });
    const join = seen.find(([p]) => p === '/NetworkDriver.Join')![1];
    expect(join).toEqual({
      InterfaceName: { SrcName: 'pc9f6f8eda4a7', DstPrefix: 'eth' },
      Gateway: '169.254.1.1',
      StaticRoutes: [{ Destination: '169.254.1.1/32', RouteType: 1 }],
      DisableGatewayService: true,
    });
    expect(seen.find(([p]) => p === '/NetworkDriver.EndpointOperInfo')![1]).toHaveProperty('Value');
    // After `docker rm` and `docker network rm`: no link, no route, no state row.
    expect(plugin.links.links.size).toBe(0);
    expect(plugin.links.poolRoutes.size).toBe(0);
    expect(plugin.state.allKeys().filter((k) => !k.startsWith('carve/'))).toEqual([]);
    expect(plugin.firewall.model).toEqual({ networks: [], endpoints: [] });
  });

  it('installs the unreachable pool route at CreateNetwork and the veth at Join', async () => {
    const plugin = await fakePlugin();
    const trace = loadTrace();
    let poolId = '';
    for (const { path, body } of trace) {
      const res = await call(plugin.app, path, replayBody(body, poolId));
      if (path === '/IpamDriver.RequestPool') poolId = JSON.parse(res.text).PoolID;
      if (path === '/NetworkDriver.CreateNetwork') expect([...plugin.links.poolRoutes]).toEqual(['198.18.9.0/24']);
      if (path === '/NetworkDriver.Join') {
        expect(plugin.links.links.get('pn9f6f8eda4a7')).toMatchObject({ address: '198.18.9.10', peerIf: 'pc9f6f8eda4a7', mtu: 1500 });
        break;
      }
    }
    expect(plugin.firewall.model?.endpoints.map((e) => e.address)).toEqual(['198.18.9.10']);
  });
});

describe('malformed requests get HTTP 500 with an Err naming the problem', () => {
  const cases: Array<[string, string, string | object | undefined, RegExp]> = [
    ['not JSON', '/IpamDriver.RequestPool', '{"Pool": ', /not JSON/],
    ['a JSON array', '/IpamDriver.RequestPool', [], /must be a JSON object/],
    ['a string', '/NetworkDriver.CreateNetwork', '"hello"', /must be a JSON object/],
    ['an empty body where one is needed', '/IpamDriver.RequestAddress', undefined, /must be a JSON object, got missing/],
    ['a wrong type', '/IpamDriver.RequestPool', { Pool: 5 }, /Pool 5: .*string/],
    ['a missing field', '/IpamDriver.ReleaseAddress', { Address: '198.18.1.2' }, /PoolID missing/],
    ['a bad network id', '/NetworkDriver.CreateNetwork', { NetworkID: 'xyz', IPv4Data: [] }, /NetworkID "xyz": must be 64 hexadecimal/],
    ['a wrong nested type', '/NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP, Interface: { Address: 7 } }, /Interface.Address 7/],
    ['a boolean for V6', '/IpamDriver.RequestPool', { Pool: '198.18.1.0/24', V6: 'yes' }, /V6 "yes"/],
    ['a bad subnet', '/IpamDriver.RequestPool', { Pool: '198.18.1.0/33' }, /Pool "198.18.1.0\/33"/],
    ['an unknown pool', '/IpamDriver.RequestAddress', { PoolID: 'nope', Address: '' }, /PoolID "nope" is not a pool/],
    ['an unknown portnet network option', '/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': { 'com.example.netopt': '1' } }, IPv4Data: [{ Pool: '198.18.9.0/24' }] }, /unknown network option com.example.netopt/],
    ['a bad icc value', '/NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': { 'com.example.icc': 'flase' } }, IPv4Data: [{ Pool: '198.18.9.0/24' }] }, /com.example.icc="flase" must be true or false/],
    ['an unknown endpoint', '/NetworkDriver.Join', { NetworkID: NET, EndpointID: EP }, new RegExp(`endpoint ${EP} does not exist`)],
  ];
  for (const [what, path, body, pattern] of cases) {
    it(`${what}`, async () => {
      const { app } = await fakePlugin();
      const res = await call(app, path, body);
      expect(res.status).toBe(500);
      const answer = JSON.parse(res.text) as { Err: string };
      expect(answer.Err).toMatch(pattern);
    });
  }

  it('a 2 MB body', async () => {
    const { app } = await fakePlugin();
    const res = await call(app, '/IpamDriver.RequestPool', JSON.stringify({ Pool: 'x'.repeat(2 * 1024 * 1024) }));
    expect(res.status).toBe(500);
    expect(JSON.parse(res.text).Err).toMatch(/too large/);
  });

  it('a failed request changes no state', async () => {
    const plugin = await fakePlugin();
    const before = plugin.state.allKeys();
    await call(plugin.app, '/IpamDriver.RequestPool', { Pool: '198.18.1.0/24', SubPool: '198.18.2.0/25' });
    expect(plugin.state.allKeys()).toEqual(before);
  });
});
