// IPAM: every address of a /16 requested through the socket, one call at a time, then released;
// and the time to restart the plugin with 60,000 allocations in its state, alternated with restarts
// of a plugin whose state is empty. The plugins run in namespaces of their own (their start-up
// firewall apply touches nothing of the host) and Docker never sees their sockets.
import { join } from 'node:path';
import { Cleanup, SCRATCH, median, num, progress, summary, table } from './lib/common.mjs';
import { createNetns } from './lib/netns.mjs';
import { Plugin, call, callSocket } from './lib/plugin.mjs';

const POOL = '198.19.0.0/16';
const CAPACITY = 65534;
const RESTART_AT = 60000;

function newPlugin(cli, name, netns) {
  const dir = join(SCRATCH, name);
  return new Plugin({
    cli,
    socket: join(dir, 'portnet.sock'),
    stateDir: join(dir, 'state'),
    logFile: join(dir, 'plugin.log'),
    netns,
    env: { DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`, PORTNET_RECONCILE_SETTLE_MS: '9999999' },
  });
}

export async function ipamBench({ cli, addresses = CAPACITY, restarts = 5 }) {
  const target = Math.min(addresses, CAPACITY);
  const cleanup = new Cleanup();
  try {
    const { rmSync } = await import('node:fs');
    rmSync(join(SCRATCH, 'ipam'), { recursive: true, force: true });
    rmSync(join(SCRATCH, 'ipam-empty'), { recursive: true, force: true });
    const plugin = newPlugin(cli, 'ipam', await createNetns('pnbench-ipam-0', cleanup));
    const empty = newPlugin(cli, 'ipam-empty', await createNetns('pnbench-ipam-1', cleanup));
    cleanup.defer('stop plugins', async () => {
      await plugin.stop();
      await empty.stop();
    });
    await plugin.start();
    await empty.start();
    const pool = await call(plugin.socket, '/IpamDriver.RequestPool', { AddressSpace: 'portnet-local', Pool: POOL, SubPool: '', Options: {}, V6: false });
    const PoolID = pool.body.PoolID;
    const restartAt = Math.min(RESTART_AT, target);
    progress(`ipam: pool ${PoolID}; requesting ${target.toLocaleString('en-US')} addresses one by one (restarts at ${restartAt.toLocaleString('en-US')})`);

    const held = [];
    const requestMs = [];
    let restart;
    const t0 = performance.now();
    for (let i = 0; i < target; i++) {
      const r = await call(plugin.socket, '/IpamDriver.RequestAddress', { PoolID, Address: '', Options: {} });
      requestMs.push(r.ms);
      held.push(r.body.Address.split('/')[0]);
      if ((i + 1) % 5000 === 0) progress(`ipam: ${(i + 1).toLocaleString('en-US')} held, last 5,000 at p50 ${num(median(requestMs.slice(-5000)))} ms`);
      if (i + 1 === restartAt) restart = await measureRestarts(plugin, empty, restarts, restartAt);
    }
    const allocSeconds = (performance.now() - t0) / 1000;
    const unique = new Set(held).size;
    let exhausted;
    if (target === CAPACITY) {
      const r = await callSocket(plugin.socket, '/IpamDriver.RequestAddress', { PoolID, Address: '', Options: {} });
      exhausted = { status: r.status, err: r.body?.Err };
      progress(`ipam: one more request: ${r.status} ${r.body?.Err}`);
    }
    const rssFullKib = plugin.rssKib();

    progress(`ipam: releasing ${held.length.toLocaleString('en-US')} addresses`);
    const releaseMs = [];
    const t1 = performance.now();
    for (const [i, Address] of held.entries()) {
      const r = await call(plugin.socket, '/IpamDriver.ReleaseAddress', { PoolID, Address });
      releaseMs.push(r.ms);
      if ((i + 1) % 10000 === 0) progress(`ipam: ${(i + 1).toLocaleString('en-US')} released`);
    }
    const releaseSeconds = (performance.now() - t1) / 1000;
    await call(plugin.socket, '/IpamDriver.ReleasePool', { PoolID });

    const quarter = (xs, q) => xs.slice(Math.floor((q * xs.length) / 4), Math.floor(((q + 1) * xs.length) / 4));
    const result = {
      pool: POOL,
      requested: target,
      unique,
      exhausted,
      request: summary(requestMs),
      // Does a request cost more when the pool is fuller? p50 per quarter of the run.
      requestP50ByQuarter: [0, 1, 2, 3].map((q) => median(quarter(requestMs, q))),
      release: summary(releaseMs),
      allocSeconds,
      releaseSeconds,
      rssFullKib,
      restart,
    };
    return { ...result, markdown: ipamMarkdown(result) };
  } finally {
    await cleanup.run();
  }
}

async function measureRestarts(plugin, empty, count, held) {
  progress(`ipam: ${held.toLocaleString('en-US')} held: ${count} restarts, alternated with an empty-state plugin`);
  const rssKib = plugin.rssKib();
  const full = [];
  const none = [];
  for (let k = 0; k < count; k++) {
    const order = k % 2 === 0 ? [[plugin, full], [empty, none]] : [[empty, none], [plugin, full]];
    for (const [p, into] of order) {
      await p.stop('SIGTERM');
      into.push(await p.start());
    }
  }
  progress(`ipam: restart with ${held.toLocaleString('en-US')} allocations: median ${num(median(full))} ms; empty state: ${num(median(none))} ms`);
  return { allocations: held, rssKib, withAllocations: summary(full), emptyState: summary(none), ratio: median(full) / median(none) };
}

function ipamMarkdown(r) {
  const rows = [
    ['RequestAddress', r.requested.toLocaleString('en-US'), num(r.request.median), num(r.request.p95), num(r.request.p99), num(r.request.max), num(r.requested / r.allocSeconds)],
    ['ReleaseAddress', r.requested.toLocaleString('en-US'), num(r.release.median), num(r.release.p95), num(r.release.p99), num(r.release.max), num(r.requested / r.releaseSeconds)],
  ];
  const out = [
    `Pool ${r.pool}: ${r.requested.toLocaleString('en-US')} sequential requests over the socket (${r.unique.toLocaleString('en-US')} distinct addresses), then every one released. Times at the client.`,
    '',
    table(['call', 'count', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'calls/s'], rows),
    '',
    `RequestAddress p50 per quarter of the run (pool filling up): ${r.requestP50ByQuarter.map((x) => num(x)).join(' → ')} ms.`,
  ];
  if (r.exhausted) out.push(`Request ${(r.requested + 1).toLocaleString('en-US')}: HTTP ${r.exhausted.status}, \`${r.exhausted.err}\`.`);
  out.push(`Plugin RSS with the pool full: ${num(r.rssFullKib / 1024)} MiB.`);
  if (r.restart) {
    out.push('');
    out.push(
      table(
        ['restart (SIGTERM, start until Plugin.Activate answers)', 'n', 'median ms', 'p95 ms'],
        [
          [`${r.restart.allocations.toLocaleString('en-US')} allocations in the state`, String(r.restart.withAllocations.n), num(r.restart.withAllocations.median), num(r.restart.withAllocations.p95)],
          ['empty state', String(r.restart.emptyState.n), num(r.restart.emptyState.median), num(r.restart.emptyState.p95)],
        ],
      ),
    );
    out.push('');
    out.push(`Ratio (medians): ${num(r.restart.ratio)}×; RSS at ${r.restart.allocations.toLocaleString('en-US')} allocations: ${num(r.restart.rssKib / 1024)} MiB.`);
  }
  return out.join('\n');
}

