// A plugin on fakes that can "die" at any side effect, and a small model of Docker driving it.
//
// The fakes of the kernel (FakeLinks, FakeFirewall) and the store (MemoryStore) outlive a crash, as
// the kernel and the database file do; the plugin object (its in-memory mirror) does not.
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { expect } from 'vitest';
import { DEFAULTS, type Config } from '../../../src/config.js';
import type { EndpointLinkSpec, Links, SandboxSide } from '../../../src/dataplane/links.js';
import { FakeFirewall } from '../../../src/dataplane/fakeFirewall.js';
import { FakeLinks } from '../../../src/dataplane/fakeLinks.js';
import type { Firewall, FirewallModel } from '../../../src/dataplane/model.js';
import { FakeDockerView, type DockerNetwork } from '../../../src/docker/view.js';
import { buildFirewallModel } from '../../../src/network/firewallModel.js';
import { reconcileWithDocker, snapshotState, type StateSnapshot } from '../../../src/reconcile/docker.js';
import { reconcileKernel } from '../../../src/reconcile/kernel.js';
import type { Repair } from '../../../src/reconcile/repair.js';
import { buildPlugin, type Plugin } from '../../../src/serve.js';
import { MemoryStore } from '../../../src/state/memoryStore.js';
import type { Store, StoreGuard, StoreOp } from '../../../src/state/store.js';

export const silent = pino({ level: 'silent' });
export const CONFIG: Config = { ...DEFAULTS, defaultPool: '198.18.128.0/17' };
export const hex = (n: number, width = 64) => n.toString(16).padStart(width, '0');
/** A Docker-like ID: 64 hex characters, distinct in its first 11 (the link name) for distinct `n`. */
export const idOf = (n: number | string) => createHash('sha256').update(String(n)).digest('hex');

/** The process died here: every side effect from now on fails the same way. */
export class Crash extends Error {
  override name = 'Crash';
}

/**
 * Counts side effects (commits, link and rule changes). Crash point `at` = 2k is "dies just before
 * side effect k", 2k+1 is "side effect k is made, then the process dies before it goes on" (an
 * answer lost after a commit). From then on every side effect throws Crash.
 */
export class Fuse {
  count = 0;
  blown = false;
  constructor(public at = Number.POSITIVE_INFINITY) {}
  /** Counts from now: crash point `n` is relative to the next side effect. */
  arm(n: number): void {
    this.at = 2 * this.count + n;
  }
  async around<T>(what: string, effect: () => Promise<T>): Promise<T> {
    const k = this.count++;
    if (this.blown || 2 * k === this.at) return this.die(what, 'before');
    const result = await effect();
    if (2 * k + 1 === this.at) return this.die(what, 'after');
    return result;
  }
  private die(what: string, when: string): never {
    this.blown = true;
    throw new Crash(`died ${when} side effect #${this.at >> 1} (${what})`);
  }
}

class FusedStore implements Store {
  constructor(
    private readonly inner: Store,
    private readonly fuse: Fuse,
  ) {}
  get<T>(key: string) {
    return this.inner.get<T>(key);
  }
  list<T>(prefix: string) {
    return this.inner.list<T>(prefix);
  }
  async commit(ops: StoreOp[], guards?: StoreGuard[]) {
    return this.fuse.around(`commit ${ops.map((o) => ('put' in o ? o.put : `-${o.delete}`)).join(' ')}`, () => this.inner.commit(ops, guards));
  }
  close() {
    return this.inner.close();
  }
}

class FusedLinks implements Links {
  constructor(
    private readonly inner: Links,
    private readonly fuse: Fuse,
  ) {}
  async createEndpointLink(spec: EndpointLinkSpec) {
    return this.fuse.around(`link add ${spec.hostIf}`, () => this.inner.createEndpointLink(spec));
  }
  async deleteEndpointLink(hostIf: string) {
    return this.fuse.around(`link del ${hostIf}`, () => this.inner.deleteEndpointLink(hostIf));
  }
  async addPoolRoute(cidr: string) {
    return this.fuse.around(`route add ${cidr}`, () => this.inner.addPoolRoute(cidr));
  }
  async removePoolRoute(cidr: string) {
    return this.fuse.around(`route del ${cidr}`, () => this.inner.removePoolRoute(cidr));
  }
  listEndpointLinks() {
    return this.inner.listEndpointLinks();
  }
  listRoutes() {
    return this.inner.listRoutes();
  }
  async repairEndpointLink(spec: EndpointLinkSpec) {
    return this.fuse.around(`link repair ${spec.hostIf}`, () => this.inner.repairEndpointLink(spec));
  }
  async removeEndpointRoute(address: string, dev: string) {
    return this.fuse.around(`route del ${address}`, () => this.inner.removeEndpointRoute(address, dev));
  }
  async enableIpv6Forwarding() {
    return this.fuse.around('sysctl ipv6 forwarding', () => this.inner.enableIpv6Forwarding());
  }
  sandboxExists(sandbox: string) {
    return this.inner.sandboxExists(sandbox);
  }
  async restoreEndpointLink(spec: EndpointLinkSpec, side: SandboxSide) {
    return this.fuse.around(`link restore ${spec.hostIf}`, () => this.inner.restoreEndpointLink(spec, side));
  }
}

class FusedFirewall implements Firewall {
  constructor(
    private readonly inner: Firewall,
    private readonly fuse: Fuse,
  ) {}
  async apply(model: FirewallModel) {
    return this.fuse.around('nft apply', () => this.inner.apply(model));
  }
  async remove() {
    return this.fuse.around('nft remove', () => this.inner.remove());
  }
}

/** What outlives a plugin process: the database and the kernel. */
export class Host {
  readonly store = new MemoryStore();
  readonly links = new FakeLinks();
  readonly firewall = new FakeFirewall();

  /**
   * Starts a plugin process and runs the start-up kernel repairs; `crashAt` counts side effects
   * from the end of start-up (`startCrashAt` from its beginning, to die during the repairs).
   */
  async start(crashAt = Number.POSITIVE_INFINITY, startCrashAt = Number.POSITIVE_INFINITY): Promise<Running> {
    const fuse = new Fuse(startCrashAt);
    const links = new FusedLinks(this.links, fuse);
    const plugin = await buildPlugin(CONFIG, { store: new FusedStore(this.store, fuse), links, firewall: new FusedFirewall(this.firewall, fuse), log: silent });
    const snapshot = snapshotState(plugin.state);
    const kernelRepairs = await reconcileKernel({
      state: plugin.state,
      links,
      driver: plugin.driver,
      log: silent,
      mtu: CONFIG.mtu,
      firewallPresent: async () => this.firewall.model !== undefined,
    });
    if (crashAt !== Number.POSITIVE_INFINITY) fuse.arm(crashAt);
    return { plugin, links, fuse, snapshot, kernelRepairs };
  }

  /** Runs the reconciliation with Docker of `run`, as the background task would (no settle delay). */
  reconcileDocker(run: Running, docker: FakeDockerView): Promise<Repair[] | undefined> {
    const p = run.plugin;
    return reconcileWithDocker(
      { state: p.state, driver: p.driver, ipam: p.ipam, links: run.links, lock: p.lock, docker, log: silent, settleMs: 0, attempts: 1 },
      run.snapshot,
    );
  }
}

export interface Running {
  plugin: Plugin;
  links: Links;
  fuse: Fuse;
  snapshot: StateSnapshot;
  kernelRepairs: Repair[];
}

/** What Docker believes after each of its operations completed (or was given up). */
export interface Belief {
  networks: Map<string, { subnet: string; poolId: string }>;
  endpoints: Map<string, { networkId: string; address: string; container: string }>;
}

export function dockerViewOf(belief: Belief): FakeDockerView {
  const view = new FakeDockerView();
  view.nets = [...belief.networks].map(
    ([id, n]): DockerNetwork => ({
      id,
      name: `net-${id.slice(0, 4)}`,
      driver: 'portnet',
      subnets: [n.subnet],
      reserved: [],
      endpoints: [...belief.endpoints].filter(([, e]) => e.networkId === id).map(([epId, e]) => ({ id: epId, containerId: e.container, ipv4: e.address })),
    }),
  );
  return view;
}

export type OnCrash = 'retry' | 'give-up';

/**
 * A model of Docker 20.10's calls (protocol sheet §6), with its rollbacks. When the plugin dies in
 * a call, Docker either resends it to the restarted plugin ('retry', the plugin was back within
 * ~15 s) or fails the operation ('give-up'; its rollback calls fail too, the plugin being down),
 * forgets what it had made, and the plugin comes back before Docker's next operation. Docker 20.10
 * was seen (robustness e2e) resending a cut call with an empty body, which the plugin refuses: for
 * the plugin that is the 'give-up' case.
 */
export class DockerSim {
  readonly belief: Belief = { networks: new Map(), endpoints: new Map() };
  run!: Running;
  crashes = 0;
  failures: string[] = [];
  private dead = false;
  private seq = 0;

  constructor(
    readonly host: Host,
    readonly onCrash: OnCrash,
    private readonly crashAt: number,
  ) {}

  async boot(): Promise<void> {
    this.run = await this.host.start(this.crashAt);
  }

  /** Starts the plugin again, without a fuse: one crash per scenario. */
  private async restart(): Promise<void> {
    this.run = await this.host.start();
    this.dead = false;
  }

  private async call<T>(fn: (p: Plugin) => Promise<T>): Promise<T> {
    if (this.dead) throw new Crash('plugin is down');
    try {
      return await fn(this.run.plugin);
    } catch (err) {
      if (!(err instanceof Crash) && !this.run.fuse.blown) throw err;
      this.crashes++;
      if (this.onCrash === 'retry') {
        await this.restart();
        return fn(this.run.plugin);
      }
      this.dead = true;
      throw err;
    }
  }

  private async attempt(fn: (p: Plugin) => Promise<unknown>): Promise<void> {
    await this.call(fn).catch(() => {});
  }

  private async operation(name: string, body: () => Promise<void>): Promise<void> {
    if (this.dead) await this.restart();
    try {
      await body();
    } catch (err) {
      this.failures.push(`${name}: ${(err as Error).message}`);
    }
  }

  createNetwork(subnet: string): Promise<void> {
    const id = idOf(`net${++this.seq}`);
    return this.operation(`network create ${subnet}`, async () => {
      const pool = await this.call((p) => p.ipam.requestPool({ AddressSpace: 'portnet-local', Pool: subnet, SubPool: '', Options: {}, V6: false }));
      try {
        await this.call((p) => p.driver.createNetwork({ NetworkID: id, Options: { 'com.docker.network.generic': {} }, IPv4Data: [{ Pool: pool.Pool }], IPv6Data: [] }));
      } catch (err) {
        await this.attempt((p) => p.ipam.releasePool(pool.PoolID));
        throw err;
      }
      this.belief.networks.set(id, { subnet: pool.Pool, poolId: pool.PoolID });
    });
  }

  /** docker run with an exposure and a -p (and --ip when `ip` is given). */
  runContainer(networkId: string, expose: string, ip = ''): Promise<void> {
    const n = ++this.seq;
    const ep = idOf(`ep${n}`);
    const container = idOf(`c${n}`).slice(0, 12);
    const portmap = [{ Proto: 6, IP: '', Port: 81, HostIP: '', HostPort: 0, HostPortEnd: 0 }];
    return this.operation(`run ${container}`, async () => {
      const net = this.belief.networks.get(networkId);
      if (!net) throw new Error('no such network');
      const { Address } = await this.call((p) => p.ipam.requestAddress({ PoolID: net.poolId, Address: ip, Options: {} }));
      const address = Address.split('/')[0]!;
      const release = () => this.attempt((p) => p.ipam.releaseAddress({ PoolID: net.poolId, Address: address }));
      try {
        await this.call((p) =>
          p.driver.createEndpoint({
            NetworkID: networkId,
            EndpointID: ep,
            Interface: { Address, AddressIPv6: '', MacAddress: '' },
            Options: { 'com.example.expose': expose, 'com.docker.network.portmap': portmap },
          }),
        );
      } catch (err) {
        await release();
        throw err;
      }
      try {
        await this.call((p) => p.driver.join({ NetworkID: networkId, EndpointID: ep, SandboxKey: `/var/run/docker/netns/${container}`, Options: { 'com.docker.network.portmap': portmap } }));
        await this.call((p) => p.driver.programExternalConnectivity({ NetworkID: networkId, EndpointID: ep, Options: { 'com.docker.network.portmap': portmap } }));
      } catch (err) {
        await this.attempt((p) => p.driver.leave(networkId, ep));
        await this.attempt((p) => p.driver.deleteEndpoint(networkId, ep));
        await release();
        throw err;
      }
      this.belief.endpoints.set(ep, { networkId, address, container });
    });
  }

  /** docker rm -f: Docker forgets the endpoint whatever the plugin answers. */
  removeContainer(ep: string): Promise<void> {
    return this.operation(`rm ${ep.slice(0, 8)}`, async () => {
      const e = this.belief.endpoints.get(ep);
      if (!e) return;
      this.belief.endpoints.delete(ep);
      const poolId = this.belief.networks.get(e.networkId)!.poolId;
      await this.attempt((p) => p.driver.revokeExternalConnectivity(e.networkId, ep));
      await this.attempt((p) => p.driver.leave(e.networkId, ep));
      await this.attempt((p) => p.driver.deleteEndpoint(e.networkId, ep));
      await this.attempt((p) => p.ipam.releaseAddress({ PoolID: poolId, Address: e.address }));
    });
  }

  /** docker network rm: release the pool, then DeleteNetwork; Docker forgets the network. */
  removeNetwork(id: string): Promise<void> {
    return this.operation(`network rm ${id.slice(0, 8)}`, async () => {
      const n = this.belief.networks.get(id);
      if (!n) return;
      this.belief.networks.delete(id);
      await this.attempt((p) => p.ipam.releasePool(n.poolId));
      await this.attempt((p) => p.driver.deleteNetwork(id));
    });
  }

  /** After the scenario: a live plugin, and its background reconciliation with Docker done. */
  async settle(): Promise<Repair[] | undefined> {
    if (this.dead) await this.restart();
    return this.host.reconcileDocker(this.run, dockerViewOf(this.belief));
  }
}

/**
 * Everything that must hold between Docker, portnet's state and the (fake) kernel once reconciled:
 * the same endpoints and networks as Docker, no address held twice or leaked, a link and a /32 route
 * per endpoint and nothing else, a pool route per network, and the rules the state implies.
 */
export function expectConsistent(host: Host, plugin: Plugin, belief: Belief): void {
  const state = plugin.state;
  const eps = state.endpoints();
  expect(new Map(eps.map((e) => [e.id, e.address])), 'endpoints: portnet vs Docker').toEqual(new Map([...belief.endpoints].map(([id, e]) => [id, e.address])));
  expect(new Set(eps.map((e) => e.address)).size, 'an address held by two endpoints').toBe(eps.length);
  expect(new Set(state.networks().map((n) => n.id)), 'networks: portnet vs Docker').toEqual(new Set(belief.networks.keys()));
  expect(new Set(state.pools().map((p) => p.id)), 'pools: portnet vs Docker').toEqual(new Set([...belief.networks.values()].map((n) => n.poolId)));
  for (const [id, n] of belief.networks) {
    const held = state.allocations(n.poolId).map((a) => a.address).sort();
    const used = [...belief.endpoints.values()].filter((e) => e.networkId === id).map((e) => e.address).sort();
    expect(held, `addresses held in ${n.subnet}`).toEqual(used);
  }
  expect(new Set(host.links.links.keys()), 'links in the kernel').toEqual(new Set(eps.map((e) => e.hostIf)));
  expect(new Map(host.links.endpointRoutes), '/32 routes in the kernel').toEqual(new Map(eps.map((e) => [e.address, e.hostIf])));
  expect(new Set(host.links.poolRoutes), 'pool routes in the kernel').toEqual(new Set(state.networks().flatMap((n) => n.pools)));
  const want = buildFirewallModel(state.networks(), state.endpoints());
  expect(host.firewall.model ?? { networks: [], endpoints: [] }, 'rules in the kernel').toEqual(want);
  const ports = eps.flatMap((e) => e.exposures.map((x) => `${x.resolved.proto}/${x.resolved.hostPort}`));
  expect(new Set(ports).size, 'a host port published twice').toBe(ports.length);
}
