// A plugin on fakes, driven through its HTTP face, for the CLI, names and metrics tests.
import request from 'supertest';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../../../src/config.js';
import { FakeFirewall } from '../../../src/dataplane/fakeFirewall.js';
import { FakeLinks } from '../../../src/dataplane/fakeLinks.js';
import type { DockerNameSource } from '../../../src/docker/names.js';
import type { Metrics } from '../../../src/metrics/metrics.js';
import { buildPlugin } from '../../../src/serve.js';
import type { StateView } from '../../../src/server/introspect.js';
import type { FirewallView } from '../../../src/cli/client.js';
import { MemoryStore } from '../../../src/state/memoryStore.js';

export const NET = 'ab'.repeat(32);
export const NET2 = 'cd'.repeat(32);
export const ep = (n: number) => `${n.toString(16).padStart(2, '0')}e0`.repeat(16);

export async function plugin(opts: { docker?: DockerNameSource; metrics?: Metrics } = {}) {
  const links = new FakeLinks();
  const firewall = new FakeFirewall();
  const config: Config = { ...DEFAULTS, defaultPool: '198.18.128.0/17' };
  const p = await buildPlugin(config, { store: new MemoryStore(), links, firewall, log: pino({ level: 'silent' }), ...opts });
  return { ...p, links, firewall };
}

export type TestPlugin = Awaited<ReturnType<typeof plugin>>;

/** POST the way Docker does (no Content-Type); throws on a non-200 answer. */
export async function call(p: TestPlugin, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await request(p.app).post(path).unset('Content-Type').send(Buffer.from(JSON.stringify(body)));
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
  return JSON.parse(res.text) as Record<string, unknown>;
}

export async function get(p: TestPlugin, path: string): Promise<{ status: number; text: string; type: string }> {
  const res = await request(p.app).get(path);
  return { status: res.status, text: res.text, type: String(res.headers['content-type'] ?? '') };
}

export async function createNetwork(p: TestPlugin, id: string, pool: string, generic: Record<string, string> = {}): Promise<void> {
  const r = await call(p, '/IpamDriver.RequestPool', { AddressSpace: 'portnet-local', Pool: pool, SubPool: '', Options: {}, V6: false });
  await call(p, '/NetworkDriver.CreateNetwork', {
    NetworkID: id,
    Options: { 'com.docker.network.generic': generic },
    IPv4Data: [{ AddressSpace: 'portnet-local', Pool: r.Pool, Gateway: '169.254.1.1/32' }],
    IPv6Data: [],
  });
}

/** RequestAddress + CreateEndpoint + Join, like `docker run`. Returns the address. */
export async function runEndpoint(
  p: TestPlugin,
  network: string,
  pool: string,
  id: string,
  options: Record<string, unknown> = {},
  joinOptions: Record<string, unknown> = {},
): Promise<string> {
  const a = await call(p, '/IpamDriver.RequestAddress', { PoolID: pool, Address: '', Options: {} });
  await call(p, '/NetworkDriver.CreateEndpoint', {
    NetworkID: network,
    EndpointID: id,
    Interface: { Address: a.Address, AddressIPv6: '', MacAddress: '' },
    Options: options,
  });
  // One container per endpoint, as `docker run` makes them: a shared sandbox would be one container on several networks.
  await call(p, '/NetworkDriver.Join', { NetworkID: network, EndpointID: id, SandboxKey: `/var/run/docker/netns/${id.slice(0, 12)}`, Options: joinOptions });
  return String(a.Address).split('/')[0]!;
}

/** Leave + DeleteEndpoint + ReleaseAddress, like a container stopping. */
export async function stopEndpoint(p: TestPlugin, network: string, pool: string, id: string, address: string): Promise<void> {
  await call(p, '/NetworkDriver.Leave', { NetworkID: network, EndpointID: id });
  await call(p, '/NetworkDriver.DeleteEndpoint', { NetworkID: network, EndpointID: id });
  await call(p, '/IpamDriver.ReleaseAddress', { PoolID: pool, Address: address });
}

/**
 * Two networks: web (198.18.1.0/24) with an endpoint exposing `8080:80 53/udp 127.0.0.1:5432:5432`
 * and -p 9443:443, and a bare one; db (198.18.2.0/24, icc off) with one endpoint.
 */
export async function populated(opts: { docker?: DockerNameSource; metrics?: Metrics } = {}) {
  const p = await plugin(opts);
  await createNetwork(p, NET, '198.18.1.0/24');
  await createNetwork(p, NET2, '198.18.2.0/24', { 'com.example.icc': 'false' });
  const portmap = [{ Proto: 6, IP: '', Port: 443, HostIP: '', HostPort: 9443, HostPortEnd: 9443 }];
  const a1 = await runEndpoint(p, NET, '198.18.1.0/24', ep(1), { 'com.example.expose': '8080:80 53/udp 127.0.0.1:5432:5432' }, { 'com.docker.network.portmap': portmap });
  const a2 = await runEndpoint(p, NET, '198.18.1.0/24', ep(2));
  const a3 = await runEndpoint(p, NET2, '198.18.2.0/24', ep(3));
  return { p, addresses: [a1, a2, a3] };
}

export async function views(p: TestPlugin): Promise<{ state: StateView; firewall: FirewallView }> {
  return {
    state: JSON.parse((await get(p, '/portnet/v1/state')).text) as StateView,
    firewall: JSON.parse((await get(p, '/portnet/v1/firewall')).text) as FirewallView,
  };
}
