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
 */

const PROBE = fileURLToPath(new URL('./netprobe.mjs', import.meta.url));
const PREFIX = 'pnfw-';

export const HOST = `${PREFIX}host`;
export const OUTSIDE = `${PREFIX}out`;
export const HOST_IP = '198.51.100.1';
export const HOST_IP_2 = '198.51.100.3';
export const OUTSIDE_IP = '198.51.100.2';

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

  async build(): Promise<void> {
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
  }

  /** A "container": its own namespace whose eth0 is the peer of host veth `hostIf`. */
  async container(name: string, hostIf: string, address: string): Promise<void> {
    const ns = PREFIX + name;
    await this.netns(ns);
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
