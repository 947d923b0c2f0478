// Container names are learnt from Docker in the background, never inside a protocol call.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ContainerNames, type DockerEvent, type DockerNameSource, type DockerNetworkInfo } from '../../../src/docker/names.js';
import { lsRows } from '../../../src/cli/ls.js';
import { call, createNetwork, ep, NET, plugin, runEndpoint, views } from './support.js';

/** A Docker that answers NetworkInspect from `networks`, counts calls, and can be switched off. */
class FakeDocker implements DockerNameSource {
  readonly where = 'unix:///fake/docker.sock';
  networks = new Map<string, DockerNetworkInfo>();
  inspects = 0;
  down = false;
  /** Holds every inspect until released (a Docker busy with a container start). */
  hold: Promise<void> | undefined;
  private emit: ((e: DockerEvent) => void) | undefined;
  private end: ((err?: Error) => void) | undefined;
  opened = 0;

  async inspectNetwork(id: string): Promise<DockerNetworkInfo | undefined> {
    this.inspects++;
    if (this.hold) await this.hold;
    if (this.down) throw new Error('connect ENOENT /fake/docker.sock');
    return this.networks.get(id);
  }

  async watchEvents(onEvent: (e: DockerEvent) => void, onEnd: (err?: Error) => void): Promise<() => void> {
    if (this.down) throw new Error('connect ENOENT /fake/docker.sock');
    this.opened++;
    this.emit = onEvent;
    this.end = onEnd;
    return () => {
      this.emit = undefined;
    };
  }

  event(e: DockerEvent): void {
    this.emit?.(e);
  }

  closeStream(): void {
    this.end?.(new Error('Docker closed the event stream'));
  }

  attach(networkId: string, name: string, key: string, endpointId: string): void {
    const n = this.networks.get(networkId) ?? { name: 'web', containers: [] };
    n.containers = n.containers.filter((c) => c.endpointId !== endpointId);
    n.containers.push({ key, name, endpointId });
    this.networks.set(networkId, n);
  }
}

const until = async (what: string, test: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const CID = 'c0'.repeat(32);

describe('container names', () => {
  it('answers Join at once even while Docker hangs, and learns the name afterwards', async () => {
    const docker = new FakeDocker();
    let release!: () => void;
    docker.hold = new Promise((r) => (release = r));
    const p = await plugin({ docker });
    await createNetwork(p, NET, '198.18.1.0/24');
    docker.attach(NET, 'site', CID, ep(1));
    const started = Date.now();
    await runEndpoint(p, NET, '198.18.1.0/24', ep(1));
    // Docker was not asked during the call (the first poll waits for a timer).
    expect(Date.now() - started).toBeLessThan(1000);
    expect(p.names.container(ep(1))).toBeUndefined();
    release();
    await until('the name', () => p.names.container(ep(1)) !== undefined);
    expect(p.names.container(ep(1))).toEqual({ id: CID, name: 'site' });
    expect(p.names.networkName(NET)).toBe('web');
    const rows = lsRows((await views(p)).state);
    expect(rows.map((r) => [r.network, r.container, r.containerId])).toEqual([['web', 'site', CID]]);
  });

  it('keeps polling while Docker lists the endpoint without its sandbox, then takes the container ID', async () => {
    const docker = new FakeDocker();
    const p = await plugin({ docker });
    await createNetwork(p, NET, '198.18.1.0/24');
    docker.attach(NET, 'site', `ep-${ep(1)}`, ep(1));
    await runEndpoint(p, NET, '198.18.1.0/24', ep(1));
    await until('the name', () => p.names.container(ep(1)) !== undefined);
    expect(p.names.container(ep(1))).toEqual({ name: 'site' });
    docker.attach(NET, 'site', CID, ep(1));
    await until('the container ID', () => p.names.container(ep(1))?.id === CID);
    const settled = docker.inspects;
    await new Promise((r) => setTimeout(r, 300));
    expect(docker.inspects).toBe(settled); // nothing left to wait for: polling stopped
  });

  it('without Docker the name stays unknown, Docker is reported unreachable, and calls still succeed', async () => {
    const docker = new FakeDocker();
    docker.down = true;
    const p = await plugin({ docker });
    await createNetwork(p, NET, '198.18.1.0/24');
    await runEndpoint(p, NET, '198.18.1.0/24', ep(1));
    await until('a failed poll', () => docker.inspects > 0);
    const { state } = await views(p);
    expect(state.endpoints[0]!.container).toBeNull();
    expect(state.docker).toMatchObject({ reachable: false, where: 'unix:///fake/docker.sock', error: 'connect ENOENT /fake/docker.sock' });
  });

  it('forgets an endpoint on DeleteEndpoint and follows renames and connect events', async () => {
    const docker = new FakeDocker();
    const p = await plugin({ docker });
    await createNetwork(p, NET, '198.18.1.0/24');
    docker.attach(NET, 'site', CID, ep(1));
    await runEndpoint(p, NET, '198.18.1.0/24', ep(1));
    await until('the name', () => p.names.container(ep(1))?.id === CID);
    const names = p.names as ContainerNames;
    names.start();
    await until('the event stream', () => docker.opened === 1);
    docker.event({ type: 'container', action: 'rename', actorId: CID, attributes: { name: 'renamed', oldName: '/site' } });
    expect(p.names.container(ep(1))?.name).toBe('renamed');
    await call(p, '/NetworkDriver.Leave', { NetworkID: NET, EndpointID: ep(1) });
    await call(p, '/NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: ep(1) });
    expect(p.names.container(ep(1))).toBeUndefined();
    names.stop();
  });

  it('learns every name when its event stream opens, and re-opens it with back-off after Docker went away', async () => {
    const docker = new FakeDocker();
    const p = await plugin({ docker });
    await createNetwork(p, NET, '198.18.1.0/24');
    docker.down = true;
    await runEndpoint(p, NET, '198.18.1.0/24', ep(1));
    const names = new ContainerNames(p.state, docker, pino({ level: 'silent' }), { backoffMs: 20, maxBackoffMs: 40 });
    names.start();
    await new Promise((r) => setTimeout(r, 60));
    expect(names.docker().reachable).toBe(false);
    docker.down = false;
    docker.attach(NET, 'late', CID, ep(1));
    await until('the start-up pass', () => names.container(ep(1))?.name === 'late');
    expect(names.docker().reachable).toBe(true);
    docker.closeStream();
    await until('a re-opened stream', () => docker.opened === 2);
    names.stop();
  });
});
