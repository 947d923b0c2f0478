// Death at every side effect of a small Docker workload, then a restart: the start-up repairs and
// the reconciliation with Docker must leave portnet, Docker and the kernel in agreement. This is
// the exhaustive, in-process twin of the SIGKILL chaos test in test/e2e/robustness.test.ts.
import { describe, expect, it } from 'vitest';
import { DockerSim, expectConsistent, Host, idOf, type OnCrash } from './sim.js';

const NET1 = idOf('net1');

async function workload(sim: DockerSim): Promise<void> {
  await sim.createNetwork('198.18.5.0/24');
  await sim.runContainer(NET1, '8080:80');
  await sim.runContainer(NET1, '8081:80 53/udp');
  await sim.runContainer(NET1, '8082:80', '198.18.5.77');
  const [first] = [...sim.belief.endpoints.keys()];
  if (first) await sim.removeContainer(first);
  await sim.runContainer(NET1, '8080:80');
  await sim.createNetwork('198.18.6.0/24');
  const second = [...sim.belief.networks.keys()].find((id) => id !== NET1);
  if (second) {
    await sim.runContainer(second, '9090:80');
    for (const [ep, e] of sim.belief.endpoints) if (e.networkId === second) await sim.removeContainer(ep);
    await sim.removeNetwork(second);
  }
}

/** How many side effects the workload makes when nothing dies. */
async function sideEffects(): Promise<number> {
  const sim = new DockerSim(new Host(), 'retry', Number.POSITIVE_INFINITY);
  await sim.boot();
  const before = sim.run.fuse.count;
  await workload(sim);
  expect(sim.failures).toEqual([]);
  return sim.run.fuse.count - before;
}

describe('a crash at any side effect, then a restart', async () => {
  const total = await sideEffects();

  it(`the workload has enough side effects to be worth crashing in (${total})`, () => {
    expect(total).toBeGreaterThan(40);
  });

  for (const onCrash of ['retry', 'give-up'] as OnCrash[]) {
    it(`Docker ${onCrash === 'retry' ? 'resends the cut call' : 'gives up on the cut call'}: after reconciling, nothing is lost, leaked or held twice (just before and just after each of the ${total} side effects)`, async () => {
      const outcomes = { failedRuns: 0, repairs: new Map<string, number>() };
      for (let at = 0; at < 2 * total; at++) {
        const host = new Host();
        const sim = new DockerSim(host, onCrash, at);
        await sim.boot();
        await workload(sim);
        const repairs = await sim.settle();
        expect(repairs, `crash point ${at}: Docker could be read`).toBeDefined();
        expect(sim.crashes, `crash point ${at} was reached`).toBe(1);
        try {
          expectConsistent(host, sim.run.plugin, sim.belief);
        } catch (err) {
          throw new Error(`crash point ${at} (${onCrash}); failures: ${sim.failures.join(' | ')}\n${(err as Error).message}`);
        }
        // A restarted plugin keeps working: one more container gets a fresh, unique address.
        await sim.runContainer(NET1, '7000:70');
        expect(sim.failures.filter((f) => f.startsWith('run ') && f.includes('7000'))).toEqual([]);
        expectConsistent(host, sim.run.plugin, sim.belief);
        if (onCrash === 'retry') {
          // Every call Docker resent to the restarted plugin succeeded: nothing failed at all.
          expect(sim.failures, `crash point ${at}`).toEqual([]);
        }
        outcomes.failedRuns += sim.failures.length;
        for (const r of [...sim.run.kernelRepairs, ...(repairs ?? [])]) outcomes.repairs.set(r.kind, (outcomes.repairs.get(r.kind) ?? 0) + 1);
      }
      console.info(`${onCrash}: ${outcomes.failedRuns} failed operations; repairs ${JSON.stringify(Object.fromEntries(outcomes.repairs))}`);
      if (onCrash === 'give-up') {
        // The crash points do reach the windows the repairs exist for.
        expect(outcomes.failedRuns).toBeGreaterThan(0);
        for (const kind of ['orphan-pool-route', 'endpoint-unknown-to-docker', 'address-unknown-to-docker', 'pool-unknown-to-docker']) {
          expect(outcomes.repairs.get(kind) ?? 0, kind).toBeGreaterThan(0);
        }
      }
    });
  }
});
