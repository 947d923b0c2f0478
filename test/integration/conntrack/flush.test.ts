import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConntrackCli, udpFlushTargets } from '../../../src/dataplane/conntrack.js';
import type { CommandRunner } from '../../../src/dataplane/dockerUser.js';
import { runCommand } from '../../../src/dataplane/exec.js';
import type { Element } from '../../../src/dataplane/nft/elements.js';

/**
 * Why portnet flushes UDP conntrack entries, shown on the real kernel: a client that sends
 * continuously keeps reaching whatever its conntrack entry decided on its first packet, whatever
 * the DNAT map says now, until ConntrackCli deletes the entry; then the next datagram follows the map.
 *
 *   client NS (eth0 198.51.100.2/24, 2001:db8:100::2/64)
 *        |  veth "tcl"
 *   host NS (198.51.100.1 + .3/24, 2001:db8:100::1/64; nft DNAT maps like portnet's; forwarding)
 *        |  veths "pnca", "pncb" (proxy_arp, fe80::1)
 *   container NS a (198.18.0.2, 2001:db8:1::a)   container NS b (198.18.0.3, 2001:db8:1::b)
 *
 * Packets only ever travel between these namespaces.
 */

const UDP = fileURLToPath(new URL('./udp.mjs', import.meta.url));
const PREFIX = 'pnct-';
const HOST = `${PREFIX}host`;
const CLIENT = `${PREFIX}client`;
const HOST_IP = '198.51.100.1';
const HOST_IP_2 = '198.51.100.3';
const HOST_IP6 = '2001:db8:100::1';
const CONTAINERS = {
  a: { ns: `${PREFIX}a`, hostIf: 'pnca', v4: '198.18.0.2', v6: '2001:db8:1::a' },
  b: { ns: `${PREFIX}b`, hostIf: 'pncb', v4: '198.18.0.3', v6: '2001:db8:1::b' },
} as const;
type Label = keyof typeof CONTAINERS;

const EVERY_MS = 20;
/** Long enough for dozens of datagrams: if the map were followed without a flush, one would show. */
const STALE_MS = 800;

const hostRunner: CommandRunner = (program, args, input) => runCommand('ip', ['netns', 'exec', HOST, program, ...args], input);
const ip = (...args: string[]) => runCommand('ip', args);
const nft = (script: string) => hostRunner('nft', ['-f', '-'], script);

const children: ChildProcess[] = [];

/** Element texts exactly as portnet's firewall writes them (elements.ts). */
const el = (set: string, key: string, value: string) => ({ set, key, value }) as unknown as Element;
const text = (e: Element) => `${e.key} : ${e.value}`;

/** One nft transaction of element deletes and adds, as an incremental apply sends it. */
async function delta(deletes: Element[], adds: Element[]): Promise<Element[]> {
  const lines = [
    ...deletes.map((e) => `delete element inet pnct ${e.set} { ${text(e)} }`),
    ...adds.map((e) => `add element inet pnct ${e.set} { ${text(e)} }`),
  ];
  await nft(lines.join('\n') + '\n');
  return [...deletes, ...adds];
}

const warnings: string[] = [];
const conntrack = new ConntrackCli({ run: hostRunner, logger: { warn: (_o, msg) => void warnings.push(msg) } });

/** A continuous client in the client namespace and the labels of the replies it got. */
class Stream {
  readonly replies: string[] = [];
  private waiters: (() => void)[] = [];

  static async start(host: string, port: number): Promise<Stream> {
    const s = new Stream();
    const child = spawn('ip', ['netns', 'exec', CLIENT, 'node', UDP, 'stream', host, String(port), String(EVERY_MS)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      let buffer = '';
      child.stdout!.on('data', (d: Buffer) => {
        buffer += d.toString();
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line === 'ready') resolve();
          else s.push(line);
        }
      });
      child.on('exit', (code) => reject(new Error(`stream to ${host}:${port} exited (${code})`)));
    });
    return s;
  }

  private push(label: string): void {
    this.replies.push(label);
    for (const w of this.waiters.splice(0)) w();
  }

  /** The labels of the replies that arrive during the next `ms`. */
  async during(ms: number): Promise<string[]> {
    const from = this.replies.length;
    await new Promise((r) => setTimeout(r, ms));
    return this.replies.slice(from);
  }

  /** Resolves with how long it took a reply from `label` to arrive (only replies after now count). */
  async next(label: string, timeoutMs = 2000): Promise<number> {
    const from = this.replies.length;
    const started = Date.now();
    while (!this.replies.slice(from).includes(label)) {
      if (Date.now() - started > timeoutMs) throw new Error(`no reply from ${label} within ${timeoutMs} ms (got ${this.replies.slice(from).join(',') || 'nothing'})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return Date.now() - started;
  }

  /** The replies after the first one from `label`, from now on: the ones that came after the switch. */
  async settledOn(label: string, ms: number): Promise<string[]> {
    await this.next(label);
    return this.during(ms);
  }
}

async function serve(which: Label, port: number): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', CONTAINERS[which].ns, 'node', UDP, 'serve', which, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.on('exit', (code) => reject(new Error(`server ${which} exited (${code})`)));
  });
}

async function destroyLeftovers(): Promise<void> {
  for (const line of (await ip('netns', 'list')).split('\n')) {
    const name = line.split(' ')[0];
    if (!name?.startsWith(PREFIX)) continue;
    // Processes of a run that died before its afterAll: ours, ended by pid.
    for (const pid of (await ip('netns', 'pids', name)).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await ip('netns', 'del', name);
  }
}

async function netns(ns: string): Promise<void> {
  await ip('netns', 'add', ns);
  await ip('-n', ns, 'link', 'set', 'lo', 'up');
}

const sysctl = (ns: string, key: string, value: string) => ip('netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`);

beforeAll(async () => {
  await destroyLeftovers();
  await netns(HOST);
  await sysctl(HOST, 'net.ipv4.ip_forward', '1');
  await sysctl(HOST, 'net.ipv6.conf.all.forwarding', '1');
  await netns(CLIENT);
  await ip('-n', HOST, 'link', 'add', 'tcl', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', CLIENT);
  for (const a of [`${HOST_IP}/24`, `${HOST_IP_2}/24`]) await ip('-n', HOST, 'addr', 'add', a, 'dev', 'tcl');
  await ip('-n', HOST, 'addr', 'add', `${HOST_IP6}/64`, 'dev', 'tcl', 'nodad');
  await ip('-n', HOST, 'link', 'set', 'tcl', 'up');
  await ip('-n', CLIENT, 'addr', 'add', '198.51.100.2/24', 'dev', 'eth0');
  await ip('-n', CLIENT, 'addr', 'add', '2001:db8:100::2/64', 'dev', 'eth0', 'nodad');
  await ip('-n', CLIENT, 'link', 'set', 'eth0', 'up');
  // proxy_arp answers for 169.254.1.1 only if the host routes it through another interface.
  await ip('-n', HOST, 'route', 'add', 'default', 'via', '198.51.100.2', 'dev', 'tcl');

  for (const c of Object.values(CONTAINERS)) {
    await netns(c.ns);
    await ip('-n', HOST, 'link', 'add', c.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.ns);
    await sysctl(HOST, `net.ipv4.conf.${c.hostIf}.proxy_arp`, '1');
    await sysctl(HOST, `net.ipv4.neigh.${c.hostIf}.proxy_delay`, '0');
    await ip('-n', HOST, 'addr', 'add', 'fe80::1/64', 'dev', c.hostIf, 'nodad');
    await ip('-n', HOST, 'link', 'set', c.hostIf, 'up');
    await ip('-n', HOST, 'route', 'add', `${c.v4}/32`, 'dev', c.hostIf);
    await ip('-n', HOST, '-6', 'route', 'add', `${c.v6}/128`, 'dev', c.hostIf);
    await ip('-n', c.ns, 'addr', 'add', `${c.v4}/32`, 'dev', 'eth0');
    await ip('-n', c.ns, 'addr', 'add', `${c.v6}/128`, 'dev', 'eth0', 'nodad');
    await ip('-n', c.ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', c.ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    await ip('-n', c.ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0', 'onlink');
    await ip('-n', c.ns, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0');
  }

  // The shape of portnet's exposures chain, reduced to the maps this test changes.
  await nft(`table inet pnct {
	map dnat_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
	map dnat_bound { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
	map dnat_any6 { type inet_proto . inet_service : ipv6_addr . inet_service; }
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump exposures
	}
	chain exposures {
		meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @dnat_bound
		meta nfproto ipv4 dnat ip to meta l4proto . th dport map @dnat_any
		meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @dnat_any6
	}
}
`);
  for (const port of [5353, 6000, 7000]) {
    await serve('a', port);
    await serve('b', port);
  }
}, 60_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)));
  for (const ns of [CLIENT, CONTAINERS.a.ns, CONTAINERS.b.ns, HOST]) await ip('netns', 'del', ns).catch(() => undefined);
});

describe('UDP conntrack flush (kernel)', () => {
  it('an entry made before the DNAT existed keeps a continuous client away from the container until flushed', async () => {
    const port = 5353;
    const client = await Stream.start(HOST_IP, port);
    // No DNAT yet: the datagrams go to the host, nothing listens, the entry stays un-NATed.
    expect(await client.during(300)).toEqual([]);

    const change = await delta([], [el('dnat_any', `udp . ${port}`, `${CONTAINERS.a.v4} . ${port}`)]);
    expect(await client.during(STALE_MS)).toEqual([]);

    await conntrack.flushUdp(udpFlushTargets(change));
    expect(await client.next('a', 1000)).toBeLessThan(1000);
    expect(warnings).toEqual([]);
  });

  it('a replaced container gets a continuous client at once after the flush, not before', async () => {
    const port = 5353;
    const client = await Stream.start(HOST_IP, port);
    await client.next('a');

    // What the firewall does when the container behind the exposure is replaced.
    const change = await delta(
      [el('dnat_any', `udp . ${port}`, `${CONTAINERS.a.v4} . ${port}`)],
      [el('dnat_any', `udp . ${port}`, `${CONTAINERS.b.v4} . ${port}`)],
    );
    const stale = await client.during(STALE_MS);
    expect(stale.length).toBeGreaterThan(STALE_MS / EVERY_MS / 4);
    expect(new Set(stale)).toEqual(new Set(['a']));

    await conntrack.flushUdp(udpFlushTargets(change));
    expect(await client.next('b', 1000)).toBeLessThan(1000);
    const after = await client.settledOn('b', 300);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after)).toEqual(new Set(['b']));
    expect(warnings).toEqual([]);
  });

  it('a bound exposure flushes its own host address only', async () => {
    const port = 6000;
    await delta(
      [],
      [HOST_IP, HOST_IP_2].map((h) => el('dnat_bound', `${h} . udp . ${port}`, `${CONTAINERS.a.v4} . ${port}`)),
    );
    const first = await Stream.start(HOST_IP, port);
    const second = await Stream.start(HOST_IP_2, port);
    await first.next('a');
    await second.next('a');

    const change = await delta(
      [el('dnat_bound', `${HOST_IP} . udp . ${port}`, `${CONTAINERS.a.v4} . ${port}`)],
      [el('dnat_bound', `${HOST_IP} . udp . ${port}`, `${CONTAINERS.b.v4} . ${port}`)],
    );
    // Also move the second address, but flush only the first: the second client must stay stale.
    await delta(
      [el('dnat_bound', `${HOST_IP_2} . udp . ${port}`, `${CONTAINERS.a.v4} . ${port}`)],
      [el('dnat_bound', `${HOST_IP_2} . udp . ${port}`, `${CONTAINERS.b.v4} . ${port}`)],
    );
    expect(udpFlushTargets(change)).toEqual([{ family: 4, port, hostIp: HOST_IP }]);
    await conntrack.flushUdp(udpFlushTargets(change));

    expect(new Set(await first.settledOn('b', 300))).toEqual(new Set(['b']));
    expect(new Set(await second.during(STALE_MS))).toEqual(new Set(['a']));
    expect(warnings).toEqual([]);
  });

  it('IPv6: a replaced container gets a continuous client after the flush', async () => {
    const port = 7000;
    await delta([], [el('dnat_any6', `udp . ${port}`, `${CONTAINERS.a.v6} . ${port}`)]);
    const client = await Stream.start(HOST_IP6, port);
    await client.next('a');

    const change = await delta(
      [el('dnat_any6', `udp . ${port}`, `${CONTAINERS.a.v6} . ${port}`)],
      [el('dnat_any6', `udp . ${port}`, `${CONTAINERS.b.v6} . ${port}`)],
    );
    expect(new Set(await client.during(STALE_MS))).toEqual(new Set(['a']));

    expect(udpFlushTargets(change)).toEqual([{ family: 6, port }]);
    await conntrack.flushUdp(udpFlushTargets(change));
    expect(new Set(await client.settledOn('b', 300))).toEqual(new Set(['b']));
    expect(warnings).toEqual([]);
  });
});
