// Control-plane scale: the cost of adding and removing one exposure when N already exist, through
// the plugin's own API, and the plugin's memory at each N.
//
// What is measured, honestly:
//   - The plugin runs inside a network namespace of its own (pnbench-ctl-*), so its nft table, its
//     iptables rules and its veths are real but touch nothing of the host; its socket is outside
//     /run/docker/plugins, so Docker never sees it.
//   - The N existing endpoints are written into its state database before it starts (as a plugin of
//     that build would have left them: joined, one exposure `HOSTPORT:80` each); at start the plugin
//     puts all their rules in the kernel, so every existing exposure is a real nft element. Their
//     veths do not exist (making 10,000 veths would measure the kernel's link table, not portnet).
//   - "Add one exposure" is what Docker sends for a container with one exposure: CreateEndpoint (with
//     com.example.expose), Join (which makes a real veth, routes it and applies the firewall) and
//     ProgramExternalConnectivity. "Remove" is RevokeExternalConnectivity, Leave, DeleteEndpoint
//     (which deletes the veth and applies the firewall). Timed at the client, per call and summed.
//   - With --baseline-cli, a second build runs beside the first (own namespace, same N, same calls)
//     and the two are alternated call sequence by call sequence, so the machine's noise hits both.
import { join } from 'node:path';
import { Cleanup, SCRATCH, median, num, percentile, progress, summary, table } from './lib/common.mjs';
import { Plugin, call, callTimes, endpointId, getState, logSize, seedState } from './lib/plugin.mjs';
import { createNetns } from './lib/netns.mjs';

const NETWORK_ID = 'f'.repeat(8) + '0'.repeat(56);
const POOL = '198.18.0.0/16';
const PORTMAP = { 'com.docker.network.endpoint.exposedports': [], 'com.docker.network.portmap': [] };

async function addExposure(socket, j) {
  const EndpointID = endpointId(j, 'c');
  const address = `198.18.250.${(j % 200) + 2}`;
  const times = {};
  const t = async (path, body) => {
    const r = await call(socket, path, body);
    times[path.split('.')[1]] = r.ms;
  };
  await t('/NetworkDriver.CreateEndpoint', {
    NetworkID: NETWORK_ID,
    EndpointID,
    Interface: { Address: `${address}/32`, AddressIPv6: '', MacAddress: '' },
    Options: { ...PORTMAP, 'com.example.expose': `${40000 + j}:80` },
  });
  await t('/NetworkDriver.Join', { NetworkID: NETWORK_ID, EndpointID, SandboxKey: `/var/run/docker/netns/pnbench${j}`, Options: PORTMAP });
  await t('/NetworkDriver.ProgramExternalConnectivity', { NetworkID: NETWORK_ID, EndpointID, Options: PORTMAP });
  return times;
}

async function removeExposure(socket, j) {
  const EndpointID = endpointId(j, 'c');
  const times = {};
  for (const m of ['RevokeExternalConnectivity', 'Leave', 'DeleteEndpoint']) {
    const r = await call(socket, `/NetworkDriver.${m}`, { NetworkID: NETWORK_ID, EndpointID });
    times[m] = r.ms;
  }
  return times;
}

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);

export async function controlBench({ cli, baselineCli, sizes = [10, 1000, 10000], iterations = 30, warmup = 3 }) {
  const variants = [{ name: 'candidate', cli }, ...(baselineCli ? [{ name: 'baseline', cli: baselineCli }] : [])];
  const results = [];
  for (const size of sizes) {
    const cleanup = new Cleanup();
    try {
      const live = [];
      for (const [i, v] of variants.entries()) {
        const netns = await createNetns(`pnbench-ctl-${i}`, cleanup);
        const dir = join(SCRATCH, `control-${v.name}-${size}`);
        progress(`control N=${size} ${v.name}: seeding ${size} endpoints`);
        await seedState(v.cli, join(dir, 'state'), { networkId: NETWORK_ID, pool: POOL, count: size, firstHostPort: 20000 });
        const plugin = new Plugin({
          cli: v.cli,
          socket: join(dir, 'portnet.sock'),
          stateDir: join(dir, 'state'),
          logFile: join(dir, 'plugin.log'),
          netns,
          // No Docker for this plugin: it must not reconcile the seeded endpoints away (the longest settle
          // delay portnet accepts, 7 digits of ms: about 2.8 hours).
          env: { DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}`, PORTNET_RECONCILE_SETTLE_MS: '9999999' },
        });
        cleanup.defer(`stop ${v.name}`, () => plugin.stop());
        const startMs = await plugin.start();
        const held = (await getState(plugin.socket)).endpoints.length;
        if (held !== size) throw new Error(`${v.name}: the plugin holds ${held} endpoints after start, not the ${size} seeded`);
        const rssStart = plugin.rssKib();
        progress(`control N=${size} ${v.name}: started in ${num(startMs)} ms (firewall for ${size} exposures restored), RSS ${num(rssStart / 1024)} MiB`);
        live.push({ ...v, plugin, startMs, rssStart, logFrom: logSize(plugin.logFile), add: [], remove: [], perCall: {} });
      }
      for (let j = 0; j < warmup + iterations; j++) {
        const order = j % 2 === 0 ? live : [...live].reverse();
        for (const v of order) {
          const a = await addExposure(v.plugin.socket, j);
          const r = await removeExposure(v.plugin.socket, j);
          if (j < warmup) continue;
          v.add.push(sum(a));
          v.remove.push(sum(r));
          for (const [k, ms] of Object.entries({ ...a, ...r })) (v.perCall[k] ??= []).push(ms);
        }
        if ((j + 1) % 10 === 0) progress(`control N=${size}: ${j + 1}/${warmup + iterations} add+remove cycles`);
      }
      for (const v of live) {
        const server = callTimes(v.plugin.logFile, v.logFrom);
        results.push({
          variant: v.name,
          size,
          startMs: v.startMs,
          rssStartKib: v.rssStart,
          rssEndKib: v.plugin.rssKib(),
          add: summary(v.add),
          remove: summary(v.remove),
          cycle: summary(v.add.map((a, i) => a + v.remove[i])),
          perCall: Object.fromEntries(Object.entries(v.perCall).map(([k, ms]) => [k, summary(ms)])),
          // Server-side time per call from the plugin's log (warm-up included: it is not split there).
          serverMs: Object.fromEntries([...server].map(([k, ms]) => [k.replace(/^NetworkDriver\./, ''), { p50: median(ms), p99: percentile(ms, 99), n: ms.length }])),
        });
      }
    } finally {
      await cleanup.run();
    }
  }
  return { sizes, iterations, warmup, variants: variants.map((v) => ({ name: v.name, cli: v.cli })), results, markdown: controlMarkdown(results, variants) };
}

function controlMarkdown(results, variants) {
  const out = [];
  for (const v of variants) {
    const rows = results.filter((r) => r.variant === v.name);
    const base = rows[0];
    out.push(`**${v.name}** (${v.cli})`);
    out.push('');
    out.push(
      table(
        ['existing exposures', 'add: median / p95 ms', 'remove: median / p95 ms', 'add+remove median ms', `× N=${base.size}`, 'start-up (restore) ms', 'RSS after start / after runs MiB'],
        rows.map((r) => [
          r.size.toLocaleString('en-US'),
          `${num(r.add.median)} / ${num(r.add.p95)}`,
          `${num(r.remove.median)} / ${num(r.remove.p95)}`,
          num(r.cycle.median),
          num(r.cycle.median / base.cycle.median),
          num(r.startMs),
          `${num(r.rssStartKib / 1024)} / ${num(r.rssEndKib / 1024)}`,
        ]),
      ),
    );
    out.push('');
    const calls = Object.keys(base.perCall);
    out.push(
      table(
        ['existing exposures', ...calls.map((c) => `${c} p50 ms (server)`)],
        rows.map((r) => [r.size.toLocaleString('en-US'), ...calls.map((c) => `${num(r.perCall[c]?.median)} (${num(r.serverMs[c]?.p50)})`)]),
      ),
    );
    out.push('');
  }
  if (variants.length > 1) {
    const sizes = [...new Set(results.map((r) => r.size))];
    out.push(
      table(
        ['existing exposures', 'add+remove median: candidate / baseline ms', 'ratio', 'p95 candidate / baseline ms'],
        sizes.map((s) => {
          const c = results.find((r) => r.size === s && r.variant === 'candidate');
          const b = results.find((r) => r.size === s && r.variant === 'baseline');
          return [s.toLocaleString('en-US'), `${num(c.cycle.median)} / ${num(b.cycle.median)}`, num(c.cycle.median / b.cycle.median), `${num(c.cycle.p95)} / ${num(b.cycle.p95)}`];
        }),
      ),
    );
  }
  return out.join('\n');
}
