// The "outside" host: a network namespace that plays another machine on the LAN / the internet.
//
// Layout for outside host NAME in slot k (k = 0..63, the first one free):
//   host namespace: link tbo<NAME>, address 198.51.100.(4k+1)/32 peer 198.51.100.(4k+2)
//   netns pntb-<NAME>: link eth0, address 198.51.100.(4k+2)/32 peer 198.51.100.(4k+1),
//                      route 198.18.0.0/15 via 198.51.100.(4k+1); IPv6 off.
// With `ipv6: true` both ends also get 2001:db8:ffKK::1/64 (host side) and ::2/64 (netns; KK = k in hex)
// and the netns routes 2001:db8::/32 via the host side; 2001:db8::/32 is a test range with an unreachable
// route on the host, so v6 traffic cannot leave the machine either.
// Point-to-point /32 addresses mean the only routes in the netns are the host side's /32 and the test
// pools: no default route, nothing that could lead out of the machine. On the host the outside host is a
// /32 too; the test bed's `unreachable 198.51.100.0/24` catches everything else in that range.
//
// Host links are named tbo* on purpose: pn* is portnet's endpoint namespace.
// Docker's FORWARD policy is DROP. `allowForward: true` adds two narrow DOCKER-USER accepts
// (in: -i tbo<NAME> -d 198.18.0.0/15; out: -o tbo<NAME> -s 198.18.0.0/15 ESTABLISHED,RELATED), removed in
// destroy(). Off by default: the plugin is expected to install the accepts portnet traffic needs.
import { spawn, type ChildProcess } from 'node:child_process';
import { run, type RunOptions, type RunResult } from './exec.js';
import type { Cleanup } from './cleanup.js';

export const OUTSIDE_NETNS_PREFIX = 'pntb-';
export const OUTSIDE_LINK_PREFIX = 'tbo';
const TEST_RANGES = ['198.18.0.0/15', '198.51.100.0/24'];

export interface OutsideHostOptions {
  /** The outside host's address: 198.51.100.x with x % 4 == 2. Default: the first free slot. */
  address?: string;
  /** Routes via the host, each inside 198.18.0.0/15 or 198.51.100.0/24. Default ['198.18.0.0/15']. */
  routes?: string[];
  /** Add the narrow DOCKER-USER accepts described above. Default false. */
  allowForward?: boolean;
  /** Give both ends IPv6 addresses from 2001:db8:ffKK::/64 (see above). Default false: IPv6 off. */
  ipv6?: boolean;
}

export interface OutsideHost {
  readonly name: string;
  /** The network namespace (also makes an OutsideHost a net.ts Vantage). */
  readonly netns: string;
  /** The outside host's address. */
  readonly address: string;
  /** The host's address on the veth toward it (a local address of the host: DNAT targets work on it). */
  readonly hostAddress: string;
  /** The host-side link name (tbo<NAME>). */
  readonly hostLink: string;
  /** The outside host's IPv6 address (2001:db8:ffKK::2), with `ipv6: true`. */
  readonly address6?: string;
  /** The host's IPv6 address on the veth (2001:db8:ffKK::1), with `ipv6: true`. */
  readonly hostAddress6?: string;
  /** Run a program inside the namespace (`ip netns exec`). */
  exec(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Start a long-running program inside the namespace; destroy() stops it. */
  spawn(cmd: string, args: readonly string[]): ChildProcess;
  destroy(): Promise<void>;
}

async function ip(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('ip', args, { timeoutMs: 15_000, ...opts });
}

function toInt(a: string): number {
  const p = a.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${a}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function inCidr(addr: string, cidr: string): boolean {
  const [net, lenS] = cidr.split('/');
  const len = Number(lenS);
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return ((toInt(addr) & mask) >>> 0) === ((toInt(net!) & mask) >>> 0);
}

function isTestRange(cidr: string): boolean {
  const [net, lenS] = cidr.split('/');
  const len = Number(lenS);
  return TEST_RANGES.some((r) => Number(r.split('/')[1]) <= len && inCidr(net!, r));
}

async function linkExists(name: string): Promise<boolean> {
  return (await ip(['link', 'show', 'dev', name], { allowFail: true })).code === 0;
}

async function netnsExists(name: string): Promise<boolean> {
  const out = (await ip(['netns', 'list'])).stdout;
  return out.split('\n').some((l) => l.split(' ')[0] === name);
}

/** Slots (k) whose host-side address 198.51.100.(4k+1) is already on some host link. */
async function usedSlots(): Promise<Set<number>> {
  const out = (await ip(['-4', '-o', 'addr', 'show'])).stdout;
  const used = new Set<number>();
  for (const m of out.matchAll(/inet 198\.51\.100\.(\d+)/g)) used.add(Math.floor(Number(m[1]) / 4));
  return used;
}

async function iptablesUser(op: '-I' | '-D', rule: string[]): Promise<void> {
  await run('iptables', ['-w', '5', op, 'DOCKER-USER', ...rule], { timeoutMs: 15_000 });
}

/** Delete DOCKER-USER rules an interrupted run left for outside host `name` (comment portnet-testbed-NAME). */
async function removeStaleRules(name: string): Promise<void> {
  const r = await run('iptables', ['-w', '5', '-S', 'DOCKER-USER'], { allowFail: true });
  if (r.code !== 0) return; // no DOCKER-USER chain: dockerd has not set up its rules
  for (const line of r.stdout.split('\n')) {
    const spec = line.split(' ');
    const i = spec.indexOf('--comment');
    if (spec[0] !== '-A' || i < 0 || spec[i + 1]?.replaceAll('"', '') !== `portnet-testbed-${name}`) continue;
    await iptablesUser('-D', spec.slice(2).map((t) => t.replaceAll('"', '')));
  }
}

export async function createOutsideHost(name: string, opts: OutsideHostOptions = {}, cleanup?: Cleanup): Promise<OutsideHost> {
  if (!/^[a-z0-9]{1,10}$/.test(name)) throw new Error(`outside host name must match [a-z0-9]{1,10}: ${name}`);
  const netns = `${OUTSIDE_NETNS_PREFIX}${name}`;
  const hostLink = `${OUTSIDE_LINK_PREFIX}${name}`;
  const tmpPeer = `tbi${name}`;
  const routes = opts.routes ?? ['198.18.0.0/15'];
  for (const r of routes) if (!isTestRange(r)) throw new Error(`outside host route ${r} is not inside a test range (${TEST_RANGES.join(', ')})`);

  // Leftovers of an interrupted run with the same name.
  if (await netnsExists(netns)) await ip(['netns', 'del', netns]);
  if (await linkExists(hostLink)) await ip(['link', 'del', hostLink]);
  await removeStaleRules(name);

  let slot: number;
  const used = await usedSlots();
  if (opts.address) {
    const x = toInt(opts.address) - toInt('198.51.100.0');
    if (x < 0 || x > 255 || x % 4 !== 2) throw new Error(`outside host address must be 198.51.100.x with x % 4 == 2: ${opts.address}`);
    slot = x >> 2;
    if (used.has(slot)) throw new Error(`198.51.100.${4 * slot}/30 is already in use on this host`);
  } else {
    slot = [...Array(64).keys()].find((k) => !used.has(k)) ?? -1;
    if (slot < 0) throw new Error('no free outside-host slot in 198.51.100.0/24');
  }
  const hostAddress = `198.51.100.${4 * slot + 1}`;
  const address = `198.51.100.${4 * slot + 2}`;
  const net6 = `2001:db8:ff${slot.toString(16).padStart(2, '0')}`;
  const hostAddress6 = opts.ipv6 ? `${net6}::1` : undefined;
  const address6 = opts.ipv6 ? `${net6}::2` : undefined;

  const children = new Set<ChildProcess>();
  const forwardRules: string[][] = opts.allowForward
    ? [
        ['-i', hostLink, '-d', '198.18.0.0/15', '-m', 'comment', '--comment', `portnet-testbed-${name}`, '-j', 'ACCEPT'],
        ['-o', hostLink, '-s', '198.18.0.0/15', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-m', 'comment', '--comment', `portnet-testbed-${name}`, '-j', 'ACCEPT'],
      ]
    : [];
  const installed: string[][] = [];

  const destroy = async (): Promise<void> => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        c.kill('SIGKILL');
        await gone;
      }
    }
    children.clear();
    for (const rule of installed.splice(0)) await iptablesUser('-D', rule);
    if (await netnsExists(netns)) await ip(['netns', 'del', netns]);
    // Deleting the namespace destroys the veth pair, a moment later.
    for (let i = 0; i < 40 && (await linkExists(hostLink)); i++) await new Promise((r) => setTimeout(r, 50));
    if (await linkExists(hostLink)) await ip(['link', 'del', hostLink]);
  };
  cleanup?.defer(`destroy outside host ${name}`, destroy);

  try {
    await ip(['netns', 'add', netns]);
    const v6 = opts.ipv6 ? '0' : '1';
    // accept_ra=0: nothing on these links may configure addresses or routes behind the test's back.
    await run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', `net.ipv6.conf.all.disable_ipv6=${v6}`, `net.ipv6.conf.default.disable_ipv6=${v6}`, 'net.ipv6.conf.default.accept_ra=0']);
    await ip(['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', tmpPeer, 'netns', netns]);
    await run('sysctl', ['-qw', `net.ipv6.conf.${hostLink}.disable_ipv6=${v6}`]);
    if (opts.ipv6) await run('sysctl', ['-qw', `net.ipv6.conf.${hostLink}.accept_ra=0`]);
    await ip(['addr', 'add', `${hostAddress}/32`, 'peer', `${address}/32`, 'dev', hostLink]);
    await ip(['link', 'set', hostLink, 'up']);
    await ip(['-n', netns, 'link', 'set', tmpPeer, 'name', 'eth0']);
    await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', netns, 'addr', 'add', `${address}/32`, 'peer', `${hostAddress}/32`, 'dev', 'eth0']);
    await ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
    for (const r of routes) await ip(['-n', netns, 'route', 'add', r, 'via', hostAddress, 'dev', 'eth0']);
    if (hostAddress6 && address6) {
      // nodad: the addresses are usable at once instead of after ~1 s of duplicate address detection.
      await ip(['addr', 'add', `${hostAddress6}/64`, 'dev', hostLink, 'nodad']);
      await ip(['-n', netns, 'addr', 'add', `${address6}/64`, 'dev', 'eth0', 'nodad']);
      await ip(['-n', netns, '-6', 'route', 'add', '2001:db8::/32', 'via', hostAddress6, 'dev', 'eth0']);
    }
    for (const rule of forwardRules) {
      await iptablesUser('-I', rule);
      installed.push(rule);
    }
  } catch (e) {
    await destroy().catch(() => {});
    throw e;
  }

  return {
    name,
    netns,
    address,
    hostAddress,
    hostLink,
    ...(address6 && hostAddress6 ? { address6, hostAddress6 } : {}),
    exec: (cmd, args, o = {}) => run('ip', ['netns', 'exec', netns, cmd, ...args], o),
    spawn: (cmd, args) => {
      const c = spawn('ip', ['netns', 'exec', netns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.add(c);
      return c;
    },
    destroy,
  };
}
