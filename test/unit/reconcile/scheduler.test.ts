// DockerReconciler: a dockerd that restarts (and may have forgotten containers while it was down)
// activates the plugin again; that schedules a reconciliation, never more than one at a time.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { FakeDockerView } from '../../../src/docker/view.js';
import { DockerReconciler } from '../../../src/reconcile/docker.js';
import { DockerSim, dockerViewOf, Host, idOf, silent } from './sim.js';

async function setup() {
  const host = new Host();
  const sim = new DockerSim(host, 'retry', Number.POSITIVE_INFINITY);
  await sim.boot();
  await sim.createNetwork('198.18.5.0/24');
  await sim.runContainer(idOf('net1'), '8080:80');
  await sim.runContainer(idOf('net1'), '8081:80');
  const p = sim.run.plugin;
  return { host, sim, p };
}

describe('DockerReconciler', () => {
  it('folds requests made during a run into one more run, which sees what changed meanwhile', async () => {
    const { sim, p } = await setup();
    const view = dockerViewOf(sim.belief);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    view.during = () => (view.calls === 1 ? gate : undefined);
    const r = new DockerReconciler({ state: p.state, driver: p.driver, ipam: p.ipam, links: sim.run.links, lock: p.lock, docker: view, log: silent, settleMs: 0, attempts: 1 });
    const first = r.request('start-up');
    // dockerd restarted meanwhile and forgot a container.
    const [forgotten] = [...sim.belief.endpoints.keys()];
    sim.belief.endpoints.delete(forgotten!);
    view.nets = dockerViewOf(sim.belief).nets;
    void r.request('Plugin.Activate');
    void r.request('NetworkDriver.GetCapabilities');
    release();
    expect(await first).toEqual([]); // the first run read Docker before it forgot anything
    await new Promise((resolve) => setTimeout(resolve, 10));
    while (view.calls < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await r.request('wait'); // queued behind the second run, and runs a third time
    expect(r.runs).toBe(3);
    expect(p.state.endpoint(forgotten!)).toBeUndefined();
  });

  it('is requested when Docker calls Plugin.Activate or NetworkDriver.GetCapabilities, without waiting for it', async () => {
    const { p } = await setup();
    const reasons: string[] = [];
    p.reconciler = { request: async (reason: string) => void reasons.push(reason) } as unknown as DockerReconciler;
    expect((await request(p.app).post('/Plugin.Activate')).body).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
    expect((await request(p.app).post('/NetworkDriver.GetCapabilities')).body).toEqual({ Scope: 'local', ConnectivityScope: 'local' });
    await request(p.app).post('/IpamDriver.GetCapabilities');
    expect(reasons).toEqual(['Docker called Plugin.Activate', 'Docker called NetworkDriver.GetCapabilities']);
    // A slow Docker never delays the answer: the request is only scheduled.
    p.reconciler = { request: () => new Promise(() => {}) } as unknown as DockerReconciler;
    expect((await request(p.app).post('/Plugin.Activate')).status).toBe(200);
  });

  it('a failing Docker makes a run end with undefined, and the next request runs again', async () => {
    const { sim, p } = await setup();
    const view = new FakeDockerView();
    view.down = 'no Docker';
    const r = new DockerReconciler({ state: p.state, driver: p.driver, ipam: p.ipam, links: sim.run.links, lock: p.lock, docker: view, log: silent, settleMs: 0, attempts: 2, retryMs: 0 });
    expect(await r.request('start-up')).toBeUndefined();
    view.down = undefined;
    view.nets = dockerViewOf(sim.belief).nets;
    expect(await r.request('again')).toEqual([]);
    expect(view.calls).toBe(3);
  });
});
