// Container lifecycle: N sequential `docker run -d` + `docker rm -f`, each container with one
// published port (`-p HOSTPORT:80`), on a portnet network and on a Docker bridge network, alternated
// container by container; plus the plugin's own time per protocol call, from its log.
import { Cleanup, num, percentile, median, progress, since, summary, table } from './lib/common.mjs';
import { BENCH_DRIVER, IMAGE, createNetwork, docker, ensureTestbed, removeContainer, startHostPlugin } from './lib/docker.mjs';
import { DOCKER_LABEL, sweepLeftovers } from './lib/netns.mjs';
import { callTimes, logSize } from './lib/plugin.mjs';

export async function lifecycleBench({ cli, n }) {
  await ensureTestbed();
  await sweepLeftovers();
  const cleanup = new Cleanup();
  try {
    const plugin = await startHostPlugin(cli, cleanup, 'lifecycle');
    const sides = [
      { name: 'portnet', network: await createNetwork(cleanup, 'pnbench-lc-pn', { driver: BENCH_DRIVER, subnet: '198.18.220.0/24' }), firstPort: 31000 },
      { name: 'bridge', network: await createNetwork(cleanup, 'pnbench-lc-br', { driver: 'bridge', subnet: '198.18.221.0/24' }), firstPort: 32000 },
    ];
    for (const s of sides) Object.assign(s, { run: [], rm: [] });
    // One of each first, not measured: the image and both paths are warm.
    const logFrom = logSize(plugin.logFile);
    for (let i = -1; i < n; i++) {
      const order = i % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) {
        const name = `pnbench-lc-${s.name}-${i + 1}`;
        const port = s.firstPort + i + 1;
        cleanup.defer(`rm ${name}`, () => removeContainer(name));
        let t = performance.now();
        await docker(['run', '-d', '--name', name, '--label', `${DOCKER_LABEL}=1`, '--network', s.network, '-p', `${port}:80`, IMAGE, 'sleep', '3600']);
        const runMs = since(t);
        t = performance.now();
        await docker(['rm', '-f', name]);
        const rmMs = since(t);
        if (i >= 0) {
          s.run.push(runMs);
          s.rm.push(rmMs);
        }
      }
      if ((i + 1) % 10 === 0) progress(`lifecycle: ${i + 1}/${n} containers per side`);
    }
    const calls = callTimes(plugin.logFile, logFrom);
    const results = sides.map((s) => ({
      network: s.name,
      run: summary(s.run),
      rm: summary(s.rm),
      total: summary(s.run.map((r, i) => r + s.rm[i])),
    }));
    const perCall = Object.fromEntries(
      [...calls].sort(([a], [b]) => a.localeCompare(b)).map(([k, ms]) => [k, { n: ms.length, p50: median(ms), p99: percentile(ms, 99), max: Math.max(...ms) }]),
    );
    return { n, results, perCall, markdown: lifecycleMarkdown(results, perCall, n) };
  } finally {
    await cleanup.run();
  }
}

function lifecycleMarkdown(results, perCall, n) {
  const [pn, br] = results;
  const out = [
    `${n} containers per network, alternated; \`docker run -d -p HOSTPORT:80 busybox sleep\` then \`docker rm -f\`, timed at the CLI.`,
    '',
    table(
      ['network', 'run -d median / p95 ms', 'rm -f median / p95 ms', 'run + rm median / p95 ms'],
      results.map((r) => [r.network, `${num(r.run.median)} / ${num(r.run.p95)}`, `${num(r.rm.median)} / ${num(r.rm.p95)}`, `${num(r.total.median)} / ${num(r.total.p95)}`]),
    ),
    '',
    `portnet / bridge: run ${num(pn.run.median / br.run.median)}×, rm ${num(pn.rm.median / br.rm.median)}×, run + rm ${num(pn.total.median / br.total.median)}× (medians; p95 ${num(pn.total.p95 / br.total.p95)}×)`,
    '',
    'The plugin\'s own time per call (from its log, `ms` of each answered call):',
    '',
    table(
      ['call', 'n', 'p50 ms', 'p99 ms', 'max ms'],
      Object.entries(perCall).map(([k, v]) => [k, String(v.n), num(v.p50), num(v.p99), num(v.max)]),
    ),
  ];
  return out.join('\n');
}
