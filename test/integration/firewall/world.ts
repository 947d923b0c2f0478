import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../../../src/dataplane/exec.js';
import type { CommandRunner } from '../../../src/dataplane/dockerUser.js';

/**
 * A small world of network namespaces for the firewall tests. The "host" is itself a namespace, so
 * the tests own its nft tables, iptables chains, sysctls and routes outright: nothing of the real
 * host is touched, and every packet stays between namespaces made here.
 *
 *   container NS (eth0 198.18.x.y/32, default via 169.254.1.1 onlink)
 *        |  veth
 *   host NS (pn<11 hex> per container, /32 route, proxy_arp; "tout" 198.51.100.1+.3/24)
 *        |  veth
 *   outside NS (eth0 198.51.100.2/24, a route to 198.18.0.0/15 via the host, nothing else)
 *
 * build({ ipv6: true }) adds IPv6 (2001:db8:100::/64 on the outside link, v6 forwarding, and per
 * container a /128 with fe80::1 as gateway, as the link adapter makes them); build({ other: true })
 * adds a second outside namespace on a second host interface ("tout2", 198.51.100.128/25 and
 * 2001:db8:200::/64), for interface binding and for clients that are not on the allowlist.
 */

const PROBE = fileURLToPath(new URL('./netprobe.mjs', import.meta.url));
const PREFIX = 'pnfw-';

export const HOST = `${PREFIX}host`;
export const OUTSIDE = `${PREFIX}out`;
export const HOST_IP = '198.51.100.1';
export const HOST_IP_2 = '198.51.100.3';
export const OUTSIDE_IP = '198.51.100.2';
export const HOST_IP6 = '2001:db8:100::1';
export const HOST_IP6_2 = '2001:db8:100::3';
export const OUTSIDE_IP6 = '2001:db8:100::2';
export const OTHER = `${PREFIX}other`;
export const HOST_OTHER_IP = '198.51.100.129';
export const OTHER_IP = '198.51.100.130';
export const HOST_OTHER_IP6 = '2001:db8:200::1';
export const OTHER_IP6 = '2001:db8:200::2';

export interface WorldOptions {
  ipv6?: boolean;
  other?: boolean;
}

export type Where = 'host' | 'outside' | string;

export interface ProbeResult {
  result: 'ok' | 'timeout' | 'refused' | 'error';
  /** "LABEL PEER LOCALPORT" from the server that answered. */
  reply?: string;
  code?: string;
}

export interface ServerEvent {
  proto: string;
  port: number;
  peer: string;
}

export class World {
  private readonly namespaces: string[] = [];
  private readonly servers: ChildProcess[] = [];
  readonly events = new Map<string, ServerEvent[]>();

  /** Runs a command inside the host namespace (what NftFirewall is given). */
  readonly hostRunner: CommandRunner = (program, args, input) =>
    runCommand('ip', ['netns', 'exec', HOST, program, ...args], input);

  private ipv6 = false;

  async build(options: WorldOptions = {}): Promise<void> {
    this.ipv6 = options.ipv6 === true;
    await this.destroyLeftovers();
    await this.netns(HOST);
    await this.sysctl(HOST, 'net.ipv4.ip_forward', '1');
    // The house safety net, inside the host namespace where the traffic is: an unallocated pool
    // address never goes anywhere.
    await ip('-n', HOST, 'route', 'add', 'unreachable', '198.18.0.0/15', 'metric', '4000');

    await this.netns(OUTSIDE);
    await ip('-n', HOST, 'link', 'add', 'tout', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OUTSIDE);
    await ip('-n', HOST, 'addr', 'add', `${HOST_IP}/24`, 'dev', 'tout');
    await ip('-n', HOST, 'addr', 'add', `${HOST_IP_2}/24`, 'dev', 'tout');
    await ip('-n', HOST, 'link', 'set', 'tout', 'up');
    await ip('-n', OUTSIDE, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0');
    await ip('-n', OUTSIDE, 'link', 'set', 'eth0', 'up');
    await ip('-n', OUTSIDE, 'route', 'add', '198.18.0.0/15', 'via', HOST_IP);
    // Like a real host's default gateway. It also matters to the containers: proxy_arp answers for
    // 169.254.1.1 only if the host has a route to it through another interface.
    await ip('-n', HOST, 'route', 'add', 'default', 'via', OUTSIDE_IP, 'dev', 'tout');

    if (this.ipv6) {
      await this.sysctl(HOST, 'net.ipv6.conf.all.forwarding', '1');
      await ip('-n', HOST, 'route', 'add', 'unreachable', '2001:db8::/32', 'metric', '4000');
      await ip('-n', HOST, 'addr', 'add', `${HOST_IP6}/64`, 'dev', 'tout', 'nodad');
      // Deprecated, so that the kernel never picks it as a source (masquerade, the host's own connections).
      await ip('-n', HOST, 'addr', 'add', `${HOST_IP6_2}/64`, 'dev', 'tout', 'nodad', 'preferred_lft', '0');
      await ip('-n', OUTSIDE, 'addr', 'add', `${OUTSIDE_IP6}/64`, 'dev', 'eth0', 'nodad');
      await ip('-n', OUTSIDE, 'route', 'add', '2001:db8:1::/48', 'via', HOST_IP6);
    }
    if (options.other) {
      await this.netns(OTHER);
      await ip('-n', HOST, 'link', 'add', 'tout2', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', OTHER);
      await ip('-n', HOST, 'addr', 'add', `${HOST_OTHER_IP}/25`, 'dev', 'tout2');
      await ip('-n', HOST, 'link', 'set', 'tout2', 'up');
      await ip('-n', OTHER, 'addr', 'add', `${OTHER_IP}/25`, 'dev', 'eth0');
      await ip('-n', OTHER, 'link', 'set', 'eth0', 'up');
      // The pools, and the host's addresses on the first link (to test packets for them arriving here).
      await ip('-n', OTHER, 'route', 'add', '198.18.0.0/15', 'via', HOST_OTHER_IP);
      await ip('-n', OTHER, 'route', 'add', '198.51.100.0/25', 'via', HOST_OTHER_IP);
      if (this.ipv6) {
        await ip('-n', HOST, 'addr', 'add', `${HOST_OTHER_IP6}/64`, 'dev', 'tout2', 'nodad');
        await ip('-n', OTHER, 'addr', 'add', `${OTHER_IP6}/64`, 'dev', 'eth0', 'nodad');
        await ip('-n', OTHER, 'route', 'add', '2001:db8:1::/48', 'via', HOST_OTHER_IP6);
        await ip('-n', OTHER, 'route', 'add', '2001:db8:100::/64', 'via', HOST_OTHER_IP6);
      }
    }
  }

  /** A "container": its own namespace whose eth0 is the peer of host veth `hostIf`. */
  async container(name: string, hostIf: string, address: string, address6?: string): Promise<void> {
    const ns = PREFIX + name;
    await this.netns(ns);
    // No duplicate address detection on the link-local address the kernel gives eth0: tests start at once.
    if (address6 !== undefined) await this.sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0');
    await ip('-n', HOST, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    await ip('-n', HOST, 'link', 'set', hostIf, 'up');
    await ip('-n', HOST, 'route', 'add', `${address}/32`, 'dev', hostIf);
    // What the link adapter does per veth (DESIGN §3), route_localnet for localhost DNAT replies.
    await this.sysctl(HOST, `net.ipv4.conf.${hostIf}.proxy_arp`, '1');
    await this.sysctl(HOST, `net.ipv4.neigh.${hostIf}.proxy_delay`, '0');
    await this.sysctl(HOST, `net.ipv4.conf.${hostIf}.route_localnet`, '1');
    await this.sysctl(HOST, `net.ipv4.conf.${hostIf}.forwarding`, '1');
    await ip('-n', ns, 'addr', 'add', `${address}/32`, 'dev', 'eth0');
    await ip('-n', ns, 'link', 'set', 'eth0', 'up');
    await ip('-n', ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    await ip('-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0', 'onlink');
    if (address6 !== undefined) {
      // What the link adapter does for a v6 endpoint: link-local gateway, a /128 route, and a
      // local ::1 route so that replies un-NATed to ::1 ([::1] exposures) are accepted.
      await this.sysctl(HOST, `net.ipv6.conf.${hostIf}.accept_ra`, '0');
      await ip('-n', HOST, 'addr', 'add', 'fe80::1/64', 'dev', hostIf, 'nodad');
      await ip('-n', HOST, 'route', 'add', `${address6}/128`, 'dev', hostIf);
      await ip('-n', HOST, '-6', 'route', 'add', 'local', '::1', 'dev', hostIf, 'table', 'local');
      await ip('-n', ns, 'addr', 'add', `${address6}/128`, 'dev', 'eth0', 'nodad');
      await ip('-n', ns, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0');
    } else if (this.ipv6) {
      // An IPv4-only endpoint: the link adapter turns IPv6 off on its veth.
      await this.sysctl(HOST, `net.ipv6.conf.${hostIf}.disable_ipv6`, '1');
    }
  }

  /** Starts a netprobe server in `where`; resolves once every port listens. */
  async serve(where: Where, label: string, specs: string[]): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', nsOf(where), 'node', PROBE, 'serve', label, ...specs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.servers.push(child);
    const events: ServerEvent[] = [];
    this.events.set(label, events);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      let buffer = '';
      child.stdout.on('data', (d: Buffer) => {
        buffer += d.toString();
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line === 'ready') resolve();
          else events.push(JSON.parse(line) as ServerEvent);
        }
      });
      child.on('exit', (code) => reject(new Error(`server ${label} exited (${code}): ${stderr}`)));
    });
  }

  async probe(
    where: Where,
    proto: 'tcp' | 'udp',
    host: string,
    port: number,
    options: { timeoutMs?: number; localAddress?: string } = {},
  ): Promise<ProbeResult> {
    const args = ['netns', 'exec', nsOf(where), 'node', PROBE, 'connect', proto, host, String(port)];
    args.push(String(options.timeoutMs ?? 1500));
    if (options.localAddress) args.push(options.localAddress);
    return JSON.parse(await runCommand('ip', args)) as ProbeResult;
  }

  async exec(where: Where, program: string, args: string[], input?: string): Promise<string> {
    return runCommand('ip', ['netns', 'exec', nsOf(where), program, ...args], input);
  }

  sysctl(ns: string, key: string, value: string): Promise<string> {
    return runCommand('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`]);
  }

  /** Kills the servers and deletes every namespace (their veths, routes and rules go with them). */
  async destroy(): Promise<void> {
    for (const child of this.servers) if (child.exitCode === null) child.kill('SIGKILL');
    await Promise.all(
      this.servers.map((c) => (c.exitCode === null && c.signalCode === null ? new Promise((r) => c.once('exit', r)) : null)),
    );
    for (const ns of this.namespaces.reverse()) await ip('netns', 'del', ns).catch(() => undefined);
  }

  private async netns(ns: string): Promise<void> {
    await ip('netns', 'add', ns);
    this.namespaces.push(ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  /** A run that died before its afterAll left namespaces behind; only ours carry the prefix. */
  private async destroyLeftovers(): Promise<void> {
    const list = await ip('netns', 'list');
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0];
      if (!name?.startsWith(PREFIX)) continue;
      // Servers of that run still sit in the namespace: they are ours, end them by pid.
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
}

function nsOf(where: Where): string {
  return where === 'host' ? HOST : where === 'outside' ? OUTSIDE : PREFIX + where;
}

function ip(...args: string[]): Promise<string> {
  return runCommand('ip', args);
}
