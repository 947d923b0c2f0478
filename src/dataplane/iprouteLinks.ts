import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { CommandError, runCommand } from './exec.js';
import {
  checkSandboxPath,
  firstFreeEth,
  type EndpointLinkSpec,
  type Ipv6ForwardingChange,
  type Links,
  type SandboxSide,
  HOST_IF_PREFIX,
  POOL_ROUTE_METRIC,
  ROUTE_PROTO,
} from './links.js';

/**
 * Per host-side veth: answer ARP for the gateway 169.254.1.1 and for peers (proxy_arp) at once
 * (proxy_delay 0), forward, and accept 127.0.0.1-sourced packets so localhost exposures can be
 * DNATed to the container (route_localnet).
 */
const HOST_SIDE_SYSCTLS: Array<[string, string]> = [
  ['ipv4/conf/%s/proxy_arp', '1'],
  ['ipv4/neigh/%s/proxy_delay', '0'],
  ['ipv4/conf/%s/forwarding', '1'],
  ['ipv4/conf/%s/route_localnet', '1'],
];

/**
 * Host side of a dual-stack endpoint: IPv6 on, no router advertisements from the container, and no
 * EUI-64 link-local address: fe80::1 (the containers' IPv6 gateway) is the only one it needs.
 */
const HOST_SIDE_SYSCTLS6: Array<[string, string]> = [
  ['ipv6/conf/%s/disable_ipv6', '0'],
  ['ipv6/conf/%s/accept_ra', '0'],
  ['ipv6/conf/%s/addr_gen_mode', '1'],
];

/** The host side's link-local address; the containers' GatewayIPv6. */
const GATEWAY6 = 'fe80::1';

const NOT_FOUND = /Cannot find device|does not exist|No such process|not found/i;

const isV6 = (address: string) => address.includes(':');
const OWN_LINK = new RegExp(`^${HOST_IF_PREFIX}[0-9a-f]{11}$`);

/** Links over iproute2 (batched on stdin, one process per operation) and /proc/sys writes. */
export class IprouteLinks implements Links {
  constructor(
    private readonly ip = 'ip',
    private readonly nsenter = 'nsenter',
    private readonly sysctlNetDir = '/proc/sys/net',
    /** Runs the one sysctl write inside a container's namespace (the plugin image has no sysctl). */
    private readonly node = process.execPath,
  ) {}

  async createEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    const add = ['link', 'add', spec.hostIf, 'mtu', String(spec.mtu), 'type', 'veth', 'peer', 'name', spec.peerIf, 'mtu', String(spec.mtu)];
    if (spec.mac) add.push('address', spec.mac);
    // A failed `link add` means the name belongs to someone else (or nobody): nothing of ours to undo.
    await runCommand(this.ip, add);
    try {
      // Sysctls before the link goes up, so the kernel never gives it addresses it should not have.
      await this.hostSysctls(spec);
      await runCommand(this.ip, ['-batch', '-'], this.hostBatch(spec));
      await this.loopbackRoute(spec);
    } catch (err) {
      await this.deleteEndpointLink(spec.hostIf).catch(() => {});
      throw err;
    }
  }

  /**
   * Replies to a [::1] exposure come back from the container addressed to ::1 (they are un-NATed
   * after routing), and the kernel looks up a loopback destination strictly on the incoming
   * interface: without a `local ::1` route on this link they die as Ip6InNoRoutes. Every v6 veth
   * needs its own, and IPv6 keys routes by destination and metric, so `replace` would take the
   * route away from the veth that had it before: `append` adds one more beside the others, and
   * "File exists" means this veth already has its own. The route goes with the link.
   */
  private async loopbackRoute(spec: EndpointLinkSpec): Promise<void> {
    if (spec.address6 === undefined) return;
    try {
      await runCommand(this.ip, ['-6', 'route', 'append', 'local', '::1', 'dev', spec.hostIf, 'table', 'local', 'proto', ROUTE_PROTO]);
    } catch (err) {
      if (err instanceof CommandError && /File exists/.test(err.stderr)) return;
      throw err;
    }
  }

  /** Up, the routes to the container, and for IPv6 the gateway address and the `local ::1` route. */
  private hostBatch(spec: EndpointLinkSpec): string {
    const lines = [
      `link set ${spec.hostIf} up`,
      `route replace ${spec.address}/32 dev ${spec.hostIf} proto ${ROUTE_PROTO} scope link`,
    ];
    if (spec.address6 !== undefined) {
      lines.push(
        `address replace ${spec.gateway6 ?? GATEWAY6}/64 dev ${spec.hostIf} nodad`,
        `route replace ${spec.address6}/128 dev ${spec.hostIf} proto ${ROUTE_PROTO}`,
      );
    }
    return lines.join('\n') + '\n';
  }

  private async hostSysctls(spec: EndpointLinkSpec): Promise<void> {
    const write = (path: string, value: string) => writeFile(`${this.sysctlNetDir}/${path.replace('%s', spec.hostIf)}`, value);
    for (const [path, value] of HOST_SIDE_SYSCTLS) await write(path, value);
    if (spec.address6 !== undefined) {
      for (const [path, value] of HOST_SIDE_SYSCTLS6) await write(path, value);
      return;
    }
    // An IPv4-only endpoint gets no IPv6 at all: no link-local address the container could reach
    // the host on. A kernel without IPv6 has no such file, and nothing to disable.
    try {
      await write('ipv6/conf/%s/disable_ipv6', '1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async deleteEndpointLink(hostIf: string): Promise<void> {
    try {
      await runCommand(this.ip, ['link', 'del', hostIf]);
    } catch (err) {
      if (err instanceof CommandError && /Cannot find device|does not exist/.test(err.stderr)) return;
      throw err;
    }
  }

  async addPoolRoute(cidr: string): Promise<void> {
    await runCommand(this.ip, ['route', 'replace', 'unreachable', cidr, 'metric', POOL_ROUTE_METRIC, 'proto', ROUTE_PROTO]);
  }

  async removePoolRoute(cidr: string): Promise<void> {
    try {
      await runCommand(this.ip, ['route', 'del', 'unreachable', cidr, 'metric', POOL_ROUTE_METRIC, 'proto', ROUTE_PROTO]);
    } catch (err) {
      if (err instanceof CommandError && /No such process|not found/i.test(err.stderr)) return;
      throw err;
    }
  }

  async listEndpointLinks(): Promise<string[]> {
    const out = await runCommand(this.ip, ['-o', 'link', 'show', 'type', 'veth']);
    return linkNames(out).filter((name) => name.startsWith(HOST_IF_PREFIX));
  }

  async listRoutes(): Promise<string[]> {
    const v4 = await runCommand(this.ip, ['-4', 'route', 'show', 'proto', ROUTE_PROTO]);
    let v6 = '';
    try {
      v6 = await runCommand(this.ip, ['-6', 'route', 'show', 'proto', ROUTE_PROTO]);
      v6 += await runCommand(this.ip, ['-6', 'route', 'show', 'table', 'local', 'proto', ROUTE_PROTO]);
    } catch (err) {
      // A kernel booted with ipv6.disable=1 has no IPv6 routes, so none of portnet's either.
      if (!(err instanceof CommandError && /not supported/i.test(err.stderr))) throw err;
    }
    return (v4 + '\n' + v6)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }

  async repairEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    // Sysctls first: the IPv6 address and routes need IPv6 on, and IPv4-only must flush them.
    await this.hostSysctls(spec);
    await runCommand(this.ip, ['-batch', '-'], this.hostBatch(spec));
    await this.loopbackRoute(spec);
  }

  async removeEndpointRoute(address: string, dev: string): Promise<void> {
    try {
      await runCommand(this.ip, ['route', 'del', `${address}/${isV6(address) ? 128 : 32}`, 'dev', dev, 'proto', ROUTE_PROTO]);
    } catch (err) {
      if (err instanceof CommandError && NOT_FOUND.test(err.stderr)) return;
      throw err;
    }
  }

  async enableIpv6Forwarding(): Promise<Ipv6ForwardingChange | undefined> {
    const conf = `${this.sysctlNetDir}/ipv6/conf`;
    if ((await readFile(`${conf}/all/forwarding`, 'utf8')).trim() === '1') return undefined;
    const acceptRa: string[] = [];
    // Only interfaces that live on router advertisements (an RA-learned route or a SLAAC address)
    // are moved to 2. Everywhere else forwarding's "ignore advertisements" is the safer default: a
    // container or VM bridge that kept accepting them would let a guest hijack the host's routes.
    // `all` and `default` are templates, not interfaces; portnet's own links take none.
    const usesRa = await this.raInterfaces();
    for (const name of (await readdir(conf)).sort()) {
      if (name === 'all' || name === 'default' || name === 'lo' || OWN_LINK.test(name) || !usesRa.has(name)) continue;
      let value: string;
      try {
        value = (await readFile(`${conf}/${name}/accept_ra`, 'utf8')).trim();
      } catch {
        continue; // the interface went away meanwhile
      }
      if (value !== '1') continue;
      await writeFile(`${conf}/${name}/accept_ra`, '2');
      acceptRa.push(name);
    }
    await writeFile(`${conf}/all/forwarding`, '1');
    return { acceptRa };
  }

  /** Interfaces with a route learnt from a router advertisement or an autoconfigured (dynamic) address. */
  private async raInterfaces(): Promise<Set<string>> {
    const devs = new Set<string>();
    const routes = JSON.parse((await runCommand(this.ip, ['-j', '-6', 'route', 'show', 'proto', 'ra'])) || '[]') as Array<{ dev?: string }>;
    for (const r of routes) if (r.dev) devs.add(r.dev);
    const addrs = JSON.parse((await runCommand(this.ip, ['-j', '-6', 'addr', 'show', 'dynamic'])) || '[]') as Array<{ ifname?: string; addr_info?: unknown[] }>;
    for (const a of addrs) if (a.ifname && (a.addr_info ?? []).length > 0) devs.add(a.ifname);
    return devs;
  }

  async sandboxExists(sandbox: string): Promise<boolean> {
    try {
      await access(checkSandboxPath(sandbox));
      return true;
    } catch {
      return false;
    }
  }

  async restoreEndpointLink(spec: EndpointLinkSpec, side: SandboxSide): Promise<string> {
    const sandbox = checkSandboxPath(side.sandbox);
    const inside = (args: string[], input?: string) => runCommand(this.nsenter, [`--net=${sandbox}`, '--', this.ip, ...args], input);
    const name = firstFreeEth(linkNames(await inside(['-o', 'link', 'show'])));
    // The container side is born inside the sandbox, so no name on the host can clash with it.
    const add = ['link', 'add', spec.hostIf, 'mtu', String(spec.mtu), 'type', 'veth', 'peer', 'name', name, 'mtu', String(spec.mtu)];
    if (spec.mac) add.push('address', spec.mac);
    add.push('netns', sandbox);
    await runCommand(this.ip, add);
    try {
      await this.repairEndpointLink(spec);
      const v6 = spec.address6 !== undefined && side.prefix6 !== undefined && side.gateway6 !== undefined;
      if (v6) {
        // A link takes the sandbox's default disable_ipv6, which Docker may have set; Docker
        // switches IPv6 on per interface that has an IPv6 address, and so does this.
        await runCommand(this.nsenter, [
          `--net=${sandbox}`,
          '--',
          this.node,
          '-e',
          'require("node:fs").writeFileSync(process.argv[1], process.argv[2])',
          `${this.sysctlNetDir}/ipv6/conf/${name}/disable_ipv6`,
          '0',
        ]);
      }
      const batch = [
        `link set ${name} up`,
        `address add ${spec.address}/${side.prefix} dev ${name}`,
        `route replace ${side.gateway}/32 dev ${name} scope link`,
      ];
      if (v6) {
        batch.push(`address add ${spec.address6}/${side.prefix6} dev ${name} nodad`, `route replace ${side.gateway6}/128 dev ${name}`);
      }
      await inside(['-batch', '-'], batch.join('\n') + '\n');
      // Another network of the container may hold the default route; only an absent one is added.
      if ((await inside(['-4', 'route', 'show', 'default'])).trim() === '') {
        await inside(['route', 'add', 'default', 'via', side.gateway, 'dev', name]);
      }
      if (v6 && (await inside(['-6', 'route', 'show', 'default'])).trim() === '') {
        await inside(['-6', 'route', 'add', 'default', 'via', side.gateway6!, 'dev', name]);
      }
    } catch (err) {
      await this.deleteEndpointLink(spec.hostIf).catch(() => {});
      throw err;
    }
    return name;
  }
}

/** Interface names from `ip -o link show` (`3: eth0@if4: <…>` → eth0). */
function linkNames(out: string): string[] {
  return out
    .split('\n')
    .map((line) => /^\d+: ([^:@\s]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}
