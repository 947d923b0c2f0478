// Network namespaces of the benchmarks: `pnbench-*`, host links `tbb*`. Not the test bed's pntb-/tbo
// prefixes on purpose: scripts/test.sh runs scripts/testbed/cleanup.sh before it takes the lock, and
// that would delete a benchmark's namespaces in the middle of a measurement. sweepLeftovers() below
// removes what an interrupted benchmark left.
import { run } from './common.mjs';

export const NETNS_PREFIX = 'pnbench-';
export const LINK_PREFIX = 'tbb';
/** Label of every docker container and network a benchmark makes. */
export const DOCKER_LABEL = 'org.portnet.bench.run';

export async function netnsExists(name) {
  const out = (await run('ip', ['netns', 'list'])).stdout;
  return out.split('\n').some((l) => l.split(' ')[0] === name);
}

/** A fresh, empty namespace with lo up and IPv4 forwarding on (a plugin's private "host"). */
export async function createNetns(name, cleanup) {
  if (!name.startsWith(NETNS_PREFIX)) throw new Error(`bench namespaces start with ${NETNS_PREFIX}: ${name}`);
  if (await netnsExists(name)) await deleteNetns(name);
  await run('ip', ['netns', 'add', name]);
  cleanup?.defer(`ip netns del ${name}`, () => deleteNetns(name));
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  await run('ip', ['netns', 'exec', name, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return name;
}

export async function deleteNetns(name) {
  if (!(await netnsExists(name))) return;
  // Processes still inside (servers of this run) would keep it alive: they are ours, end them by pid.
  const pids = (await run('ip', ['netns', 'pids', name], { allowFail: true })).stdout.split('\n').filter(Boolean);
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await run('ip', ['netns', 'del', name], { allowFail: true });
}

/** Removes namespaces, links and docker objects an interrupted benchmark left behind. */
export async function sweepLeftovers() {
  const docker = async (args) => (await run('docker', args, { allowFail: true, timeoutMs: 60_000 })).stdout.split('\n').filter(Boolean);
  const containers = await docker(['ps', '-aq', '--filter', `label=${DOCKER_LABEL}`]);
  if (containers.length > 0) await run('docker', ['rm', '-f', ...containers], { allowFail: true, timeoutMs: 120_000 });
  for (const n of await docker(['network', 'ls', '-q', '--filter', `label=${DOCKER_LABEL}`])) {
    await run('docker', ['network', 'rm', n], { allowFail: true, timeoutMs: 60_000 });
  }
  for (const line of (await run('ip', ['netns', 'list'])).stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith(NETNS_PREFIX)) await deleteNetns(name);
  }
  for (const line of (await run('ip', ['-o', 'link', 'show'])).stdout.split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1];
    if (name?.startsWith(LINK_PREFIX)) await run('ip', ['link', 'del', name], { allowFail: true });
  }
}

/**
 * "Another machine": namespace pnbench-NAME with eth0 198.51.100.(4k+2)/32, peer of host link tbbNAME
 * 198.51.100.(4k+1)/32, and routes only to `routes` (inside 198.18.0.0/15) via the host. No default
 * route: nothing in it can reach anything but the host and the benchmark's containers.
 */
export async function createOutside(name, cleanup, { routes = ['198.18.0.0/15'] } = {}) {
  if (!/^[a-z0-9]{1,10}$/.test(name)) throw new Error(`bad outside name ${name}`);
  for (const r of routes) if (!r.startsWith('198.18.') && !r.startsWith('198.19.')) throw new Error(`route ${r} is outside 198.18.0.0/15`);
  const netns = `${NETNS_PREFIX}${name}`;
  const link = `${LINK_PREFIX}${name}`;
  const peer = `tbc${name}`;
  if (await netnsExists(netns)) await deleteNetns(netns);
  if ((await run('ip', ['link', 'show', 'dev', link], { allowFail: true })).code === 0) await run('ip', ['link', 'del', link]);
  const used = new Set();
  for (const m of (await run('ip', ['-4', '-o', 'addr', 'show'])).stdout.matchAll(/inet 198\.51\.100\.(\d+)/g)) used.add(Math.floor(Number(m[1]) / 4));
  const slot = [...Array(64).keys()].reverse().find((k) => !used.has(k));
  if (slot === undefined) throw new Error('no free slot in 198.51.100.0/24');
  const hostAddress = `198.51.100.${4 * slot + 1}`;
  const address = `198.51.100.${4 * slot + 2}`;
  await run('ip', ['netns', 'add', netns]);
  cleanup?.defer(`outside ${netns}`, async () => {
    await deleteNetns(netns);
    await run('ip', ['link', 'del', link], { allowFail: true });
  });
  await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  // Many short connections in a row: let the client reuse TIME_WAIT ports (only inside this namespace).
  await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
  await run('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', peer, 'netns', netns]);
  await run('sysctl', ['-qw', `net.ipv6.conf.${link}.disable_ipv6=1`]);
  await run('ip', ['addr', 'add', `${hostAddress}/32`, 'peer', `${address}/32`, 'dev', link]);
  await run('ip', ['link', 'set', link, 'up']);
  await run('ip', ['-n', netns, 'link', 'set', peer, 'name', 'eth0']);
  await run('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  await run('ip', ['-n', netns, 'addr', 'add', `${address}/32`, 'peer', `${hostAddress}/32`, 'dev', 'eth0']);
  await run('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
  for (const r of routes) await run('ip', ['-n', netns, 'route', 'add', r, 'via', hostAddress, 'dev', 'eth0']);
  return { netns, link, hostAddress, address };
}
