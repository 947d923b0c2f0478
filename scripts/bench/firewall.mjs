// The firewall alone: NftFirewall.apply of "one more exposure" and "one fewer" when N exist, for
// the incremental apply, the same build replacing the table every time (incremental: false), and
// optionally the baseline build's NftFirewall — alternated, each in its own table, in a namespace of
// the benchmark's own. Also times the pure-JS steps that still look at every endpoint per change.
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Cleanup, REPO, num, progress, run, summary, table } from './lib/common.mjs';
import { createNetns } from './lib/netns.mjs';
import { endpointId, intToIp, ipToInt } from './lib/plugin.mjs';

const NET = { id: 'f'.repeat(8) + '0'.repeat(56), index: 1, pools: ['198.18.0.0/16'], icc: true, masquerade: true };

function endpoint(i, prefix = 'b', hostPort = 20000 + i, address = intToIp(ipToInt('198.18.0.0') + 2 + i)) {
  const id = endpointId(i, prefix);
  return { id, networkId: NET.id, hostIf: `pn${id.slice(0, 11)}`, address, exposures: [{ hostPort, hostPortEnd: hostPort, containerPort: 80, containerPortEnd: 80, proto: 'tcp' }] };
}

/** The same endpoints as the driver keeps them (EndpointRecord), for buildFirewallModel. */
function record(e) {
  const x = { ...e.exposures[0], origin: 'option' };
  return { id: e.id, networkId: e.networkId, hostIf: e.hostIf, peerIf: `pc${e.id.slice(0, 11)}`, address: e.address, prefix: 32, options: {}, exposures: [{ requested: x, resolved: x }], joined: true };
}

const imp = (cli, path) => import(pathToFileURL(join(dirname(cli), path)).href);

async function timeIt(fn, reps) {
  const out = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** Runs inside the namespace: prints one JSON document. */
async function inner({ cli, baselineCli, sizes, iterations, warmup }) {
  const { NftFirewall } = await imp(cli, 'dataplane/nft/apply.js');
  const { planRuleset } = await imp(cli, 'dataplane/nft/plan.js');
  const { renderRuleset } = await imp(cli, 'dataplane/nft/render.js');
  const { TableContents } = await imp(cli, 'dataplane/nft/incremental.js');
  const { buildFirewallModel } = await imp(cli, 'network/firewallModel.js');
  const variants = [
    { name: 'incremental', fw: new NftFirewall({ dockerUser: false, table: 'pnb_inc' }) },
    { name: 'full replace (same build, incremental: false)', fw: new NftFirewall({ dockerUser: false, table: 'pnb_full', incremental: false }) },
  ];
  if (baselineCli) {
    const { NftFirewall: Baseline } = await imp(baselineCli, 'dataplane/nft/apply.js');
    variants.push({ name: 'baseline build', fw: new Baseline({ dockerUser: false, table: 'pnb_base' }) });
  }
  const results = [];
  for (const size of sizes) {
    const endpoints = Array.from({ length: size }, (_, i) => endpoint(i));
    const model = { networks: [NET], endpoints };
    const withExtra = (j) => ({ networks: [NET], endpoints: [...endpoints, endpoint(j, 'c', 40000 + j, `198.18.250.${(j % 200) + 2}`)] });
    for (const v of variants) {
      const t = performance.now();
      await v.fw.apply(model);
      v.firstMs = performance.now() - t;
      v.add = [];
      v.remove = [];
    }
    for (let j = 0; j < warmup + iterations; j++) {
      const order = j % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) {
        let t = performance.now();
        await v.fw.apply(withExtra(j));
        const add = performance.now() - t;
        t = performance.now();
        await v.fw.apply(model);
        const remove = performance.now() - t;
        if (j >= warmup) {
          v.add.push(add);
          v.remove.push(remove);
        }
      }
    }
    // The pure-JS work per change that still walks every endpoint.
    const records = endpoints.map(record);
    const reps = Math.max(5, Math.min(30, Math.round(200_000 / Math.max(size, 1))));
    const contents = TableContents.fromPlan(planRuleset(model), model);
    const js = {
      buildFirewallModel: summary(await timeIt(() => buildFirewallModel([{ ...NET, options: {}, internal: false }], records), reps)),
      planRuleset: summary(await timeIt(() => planRuleset(model), reps)),
      renderRuleset: summary(await timeIt(() => renderRuleset(model), reps)),
      'TableContents.transition (one more endpoint)': summary(await timeIt(() => contents.transition(withExtra(9999)), reps)),
    };
    results.push({
      size,
      variants: variants.map((v) => ({ name: v.name, firstApplyMs: v.firstMs, add: summary(v.add), remove: summary(v.remove) })),
      js,
    });
    for (const v of variants) await v.fw.remove();
    process.stderr.write(`[bench firewall] N=${size} done\n`);
  }
  process.stdout.write(JSON.stringify(results));
}

export async function firewallBench({ cli, baselineCli, sizes = [10, 1000, 10000], iterations = 30, warmup = 3 }) {
  const cleanup = new Cleanup();
  try {
    const netns = await createNetns('pnbench-fw', cleanup);
    progress(`firewall: sizes ${sizes.join(', ')}, ${iterations} add/remove pairs each, in netns ${netns}`);
    const args = JSON.stringify({ cli, baselineCli, sizes, iterations, warmup });
    const r = await run('ip', ['netns', 'exec', netns, process.execPath, join(REPO, 'scripts/bench/firewall.mjs'), '--inner', args], { timeoutMs: 1_800_000 });
    process.stderr.write(r.stderr);
    const results = JSON.parse(r.stdout);
    return { sizes, iterations, warmup, results, markdown: firewallMarkdown(results) };
  } finally {
    await cleanup.run();
  }
}

function firewallMarkdown(results) {
  const names = results[0].variants.map((v) => v.name);
  const first = results[0];
  const rows = [];
  for (const r of results) {
    for (const v of r.variants) {
      const base = first.variants.find((b) => b.name === v.name);
      rows.push([
        r.size.toLocaleString('en-US'),
        v.name,
        `${num(v.add.median)} / ${num(v.add.p95)}`,
        `${num(v.remove.median)} / ${num(v.remove.p95)}`,
        num((v.add.median + v.remove.median) / (base.add.median + base.remove.median)),
        num(v.firstApplyMs),
      ]);
    }
  }
  const out = [
    table(['existing exposures', 'apply', 'add one: median / p95 ms', 'remove one: median / p95 ms', `× N=${first.size}`, 'first (full) apply ms'], rows),
    '',
  ];
  const inc = names[0];
  out.push(
    table(
      ['existing exposures', ...names.slice(1).map((n) => `${inc} vs ${n}: add+remove median ratio`)],
      results.map((r) => {
        const a = r.variants.find((v) => v.name === inc);
        return [r.size.toLocaleString('en-US'), ...r.variants.slice(1).map((v) => num((a.add.median + a.remove.median) / (v.add.median + v.remove.median)))];
      }),
    ),
  );
  out.push('');
  const steps = Object.keys(first.js);
  out.push(
    table(
      ['existing exposures', ...steps.map((s) => `${s} median ms`)],
      results.map((r) => [r.size.toLocaleString('en-US'), ...steps.map((s) => num(r.js[s].median))]),
    ),
  );
  return out.join('\n');
}

if (process.argv[2] === '--inner') {
  inner(JSON.parse(process.argv[3])).catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}

