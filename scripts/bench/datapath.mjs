// Data path: TCP throughput (iperf3) and new-connection rate (wrk, `Connection: close`, against
// busybox httpd) to a container, from an "outside" namespace (routes only toward the host) and from
// the host itself, on every path a packet can take:
//   portnet DNAT      outside → host address:HOSTPORT → nft DNAT → container
//   portnet direct    outside → container address (routed, the exposure's allow rule)
//   bridge -p         outside → host address:HOSTPORT → Docker's iptables DNAT → container
//   portnet localhost host → 127.0.0.1:HOSTPORT → nft DNAT (output hook) + masquerade → container
//   bridge localhost  host → 127.0.0.1:HOSTPORT → docker-proxy (userland) → container
// Every round measures every path once, in an order rotated per round, so drift hits all paths.
// Servers run inside the containers' namespaces with the host's binaries (`nsenter -t PID -n`).
import { Cleanup, ensurePrograms, median, num, progress, run, sleep, startChild, summary, table } from './lib/common.mjs';
import { BENCH_DRIVER, IMAGE, createNetwork, docker, ensureTestbed, inspect, removeContainer, startHostPlugin } from './lib/docker.mjs';
import { DOCKER_LABEL, createOutside, sweepLeftovers } from './lib/netns.mjs';

const IPERF_PORT = 5201;
const HTTP_PORT = 80;

async function startContainer(cleanup, name, network, publish) {
  cleanup.defer(`rm ${name}`, () => removeContainer(name));
  await removeContainer(name);
  await docker(['run', '-d', '--name', name, '--label', `${DOCKER_LABEL}=1`, '--network', network, ...publish.flatMap((p) => ['-p', p]), IMAGE, 'httpd', '-f', '-p', String(HTTP_PORT), '-h', '/www']);
  const c = await inspect(name);
  return { name, pid: c.State.Pid, address: c.NetworkSettings.Networks[network].IPAddress };
}

/** iperf3 -s inside the container's namespace, until stopped. */
async function startIperfServer(cleanup, pid) {
  const server = startChild('nsenter', ['-t', String(pid), '-n', 'iperf3', '-s', '-p', String(IPERF_PORT)]);
  cleanup.defer(`iperf3 server in ${pid}`, () => server.stop());
  for (let i = 0; i < 100; i++) {
    const r = await run('nsenter', ['-t', String(pid), '-n', 'ss', '-Hltn', 'sport', '=', `:${IPERF_PORT}`], { allowFail: true });
    if (r.stdout.trim()) return server;
    await sleep(50);
  }
  throw new Error(`iperf3 server in ${pid} did not listen: ${server.output()}`);
}

/** `program args…`, run inside the namespace that `prefix` enters (empty: on the host). */
function within(prefix, program, args) {
  const full = [...prefix, program, ...args];
  return [full[0], full.slice(1)];
}

async function iperf(prefix, ip, port, seconds) {
  const [cmd, args] = within(prefix, 'iperf3', ['-c', ip, '-p', String(port), '-t', String(seconds), '-O', '1', '-J']);
  const r = await run(cmd, args, {
    timeoutMs: (seconds + 30) * 1000,
    allowFail: true,
  });
  const doc = JSON.parse(r.stdout || '{}');
  if (doc.error || !doc.end) throw new Error(`iperf3 to ${ip}:${port}: ${doc.error ?? r.stderr}`);
  return { gbps: doc.end.sum_received.bits_per_second / 1e9, retransmits: doc.end.sum_sent.retransmits ?? 0 };
}

async function wrk(prefix, ip, port, seconds) {
  const args = ['-t1', '-c16', `-d${seconds}s`, '-H', 'Connection: close', `http://${ip}:${port}/`];
  const [cmd, full] = within(prefix, 'wrk', args);
  const r = await run(cmd, full, { timeoutMs: (seconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0);
  if (!(rps > 0)) throw new Error(`wrk to ${ip}:${port} made no requests:\n${r.stdout}${r.stderr}`);
  return { rps, requests, connectErrors: Number(errors?.[1] ?? 0), timeouts: Number(errors?.[4] ?? 0), non2xx };
}

export async function datapathBench({ cli, rounds, seconds }) {
  await ensurePrograms({ iperf3: 'iperf3', wrk: 'wrk', nsenter: 'util-linux', ss: 'iproute2' });
  await ensureTestbed();
  await sweepLeftovers();
  const cleanup = new Cleanup();
  try {
    await startHostPlugin(cli, cleanup, 'datapath');
    const pnNet = await createNetwork(cleanup, 'pnbench-dp-pn', { driver: BENCH_DRIVER, subnet: '198.18.222.0/24' });
    const brNet = await createNetwork(cleanup, 'pnbench-dp-br', { driver: 'bridge', subnet: '198.18.223.0/24' });
    const pn = await startContainer(cleanup, 'pnbench-dp-pn', pnNet, [`15201:${IPERF_PORT}`, `18080:${HTTP_PORT}`]);
    const br = await startContainer(cleanup, 'pnbench-dp-br', brNet, [`25201:${IPERF_PORT}`, `28080:${HTTP_PORT}`]);
    await startIperfServer(cleanup, pn.pid);
    await startIperfServer(cleanup, br.pid);
    const outside = await createOutside('dp', cleanup, { routes: ['198.18.222.0/24'] });
    const proxies = (await run('ps', ['-eo', 'args'])).stdout.split('\n').filter((l) => l.includes('docker-proxy') && l.includes('25201'));
    progress(`datapath: portnet container ${pn.address}, bridge container ${br.address}, outside ${outside.address} → host ${outside.hostAddress}; docker-proxy for 25201: ${proxies.length > 0 ? 'running' : 'not running'}`);

    const fromOutside = ['ip', 'netns', 'exec', outside.netns];
    // Each outside path gets its own client port range. The DNAT and direct paths end at the same
    // server socket with the client's source kept, so with shared ports a new connection of one path
    // meets the other path's TIME_WAIT state (in conntrack, whose reply tuples clash, and in the
    // container, where the client's per-destination timestamp offset differs): SYNs dropped, 1 s
    // retransmits, and a path measured at a fraction of its speed. Real clients do not alternate
    // paths with the same ports within two minutes; the benchmark must not either.
    const paths = [
      { name: 'portnet DNAT (outside → host address)', prefix: fromOutside, ip: outside.hostAddress, iperf: 15201, http: 18080, ports: '10000 24999' },
      { name: 'portnet direct (outside → container address)', prefix: fromOutside, ip: pn.address, iperf: IPERF_PORT, http: HTTP_PORT, ports: '25000 39999' },
      { name: 'bridge -p (outside → host address)', prefix: fromOutside, ip: outside.hostAddress, iperf: 25201, http: 28080, ports: '40000 54999' },
      { name: 'portnet localhost (host → 127.0.0.1)', prefix: [], ip: '127.0.0.1', iperf: 15201, http: 18080 },
      { name: 'bridge localhost (host → 127.0.0.1, docker-proxy)', prefix: [], ip: '127.0.0.1', iperf: 25201, http: 28080 },
    ];
    const clientPorts = async (p) => {
      if (p.ports) await run('ip', ['netns', 'exec', outside.netns, 'sysctl', '-qw', `net.ipv4.ip_local_port_range=${p.ports}`]);
    };
    // Every path works before anything is measured.
    for (const p of paths) {
      await clientPorts(p);
      await iperf(p.prefix, p.ip, p.iperf, 1);
      await wrk(p.prefix, p.ip, p.http, 1);
    }
    progress(`datapath: all ${paths.length} paths answer; ${rounds} rounds × ${paths.length} paths × (iperf3 + wrk) × ${seconds} s`);
    for (const p of paths) Object.assign(p, { gbps: [], rps: [], retransmits: [], wrkErrors: 0 });
    for (let r = 0; r < rounds; r++) {
      const order = paths.map((_, i) => paths[(i + r) % paths.length]);
      for (const p of order) {
        await clientPorts(p);
        await sleep(300);
        const t = await iperf(p.prefix, p.ip, p.iperf, seconds);
        p.gbps.push(t.gbps);
        p.retransmits.push(t.retransmits);
      }
      for (const p of order) {
        await clientPorts(p);
        await sleep(300);
        const w = await wrk(p.prefix, p.ip, p.http, seconds);
        p.rps.push(w.rps);
        p.wrkErrors += w.connectErrors + w.timeouts + w.non2xx;
      }
      progress(`datapath: round ${r + 1}/${rounds}: ${paths.map((p) => `${num(p.gbps.at(-1))} Gbit/s ${num(p.rps.at(-1))} conn/s`).join(' | ')}`);
    }
    const results = paths.map((p) => ({ path: p.name, client: p.prefix.length ? 'outside netns' : 'host', target: `${p.ip}:${p.iperf} / :${p.http}`, gbps: summary(p.gbps), rps: summary(p.rps), retransmits: p.retransmits, wrkErrors: p.wrkErrors, raw: { gbps: p.gbps, rps: p.rps } }));
    // Ratios per round (paired: measured within the same round), then their median.
    const ratio = (a, b, key) => median(paths[a][key].map((v, i) => v / paths[b][key][i]));
    const ratios = {
      'portnet DNAT / portnet direct': { gbps: ratio(0, 1, 'gbps'), rps: ratio(0, 1, 'rps') },
      'portnet DNAT / bridge -p': { gbps: ratio(0, 2, 'gbps'), rps: ratio(0, 2, 'rps') },
      'portnet localhost / bridge localhost (docker-proxy)': { gbps: ratio(3, 4, 'gbps'), rps: ratio(3, 4, 'rps') },
    };
    return { rounds, seconds, dockerProxy: proxies, results, ratios, markdown: datapathMarkdown(results, ratios, rounds, seconds) };
  } finally {
    await cleanup.run();
  }
}

function datapathMarkdown(results, ratios, rounds, seconds) {
  return [
    `${rounds} rounds; each round runs every path once (order rotated per round): iperf3 \`-t ${seconds} -O 1\` (one TCP stream), then wrk \`-t1 -c16 -d${seconds}s -H "Connection: close"\` (every request a new connection) against busybox httpd.`,
    '',
    table(
      ['path', 'TCP Gbit/s median (p95, min)', 'new connections/s median (p95, min)', 'wrk errors'],
      results.map((r) => [r.path, `${num(r.gbps.median)} (${num(r.gbps.p95)}, ${num(r.gbps.min)})`, `${num(r.rps.median)} (${num(r.rps.p95)}, ${num(r.rps.min)})`, String(r.wrkErrors)]),
    ),
    '',
    table(
      ['ratio (median of per-round ratios)', 'TCP throughput', 'new connections/s'],
      Object.entries(ratios).map(([k, v]) => [k, num(v.gbps), num(v.rps)]),
    ),
  ].join('\n');
}
