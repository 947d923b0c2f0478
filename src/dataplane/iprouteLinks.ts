import { access, writeFile } from 'node:fs/promises';
import { CommandError, runCommand } from './exec.js';
import {
  checkSandboxPath,
  firstFreeEth,
  type EndpointLinkSpec,
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

const NOT_FOUND = /Cannot find device|does not exist|No such process|not found/i;

/** Links over iproute2 (batched on stdin, one process per operation) and /proc/sys writes. */
export class IprouteLinks implements Links {
  constructor(
    private readonly ip = 'ip',
    private readonly nsenter = 'nsenter',
    private readonly sysctlNetDir = '/proc/sys/net',
  ) {}

  async createEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    const peerMac = spec.mac ? ` address ${spec.mac}` : '';
    const batch = [
      `link add ${spec.hostIf} mtu ${spec.mtu} type veth peer name ${spec.peerIf} mtu ${spec.mtu}${peerMac}`,
      `link set ${spec.hostIf} up`,
      `route replace ${spec.address}/32 dev ${spec.hostIf} proto ${ROUTE_PROTO} scope link`,
    ].join('\n');
    try {
      await runCommand(this.ip, ['-batch', '-'], batch + '\n');
    } catch (err) {
      // ip reports the failing batch line; if `link add` itself failed the name belongs to
      // someone else (or nobody), and deleting it would destroy a link we did not make.
      if (err instanceof CommandError && /Command failed -:1\b/.test(err.stderr)) throw err;
      await this.deleteEndpointLink(spec.hostIf).catch(() => {});
      throw err;
    }
    try {
      await this.hostSysctls(spec.hostIf);
    } catch (err) {
      await this.deleteEndpointLink(spec.hostIf).catch(() => {});
      throw err;
    }
  }

  private async hostSysctls(hostIf: string): Promise<void> {
    for (const [path, value] of HOST_SIDE_SYSCTLS) {
      await writeFile(`${this.sysctlNetDir}/${path.replace('%s', hostIf)}`, value);
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
    const out = await runCommand(this.ip, ['-4', 'route', 'show', 'proto', ROUTE_PROTO]);
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }

  async repairEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    const batch = [
      `link set ${spec.hostIf} up`,
      `route replace ${spec.address}/32 dev ${spec.hostIf} proto ${ROUTE_PROTO} scope link`,
    ].join('\n');
    await runCommand(this.ip, ['-batch', '-'], batch + '\n');
    await this.hostSysctls(spec.hostIf);
  }

  async removeEndpointRoute(address: string, dev: string): Promise<void> {
    try {
      await runCommand(this.ip, ['route', 'del', `${address}/32`, 'dev', dev, 'proto', ROUTE_PROTO]);
    } catch (err) {
      if (err instanceof CommandError && NOT_FOUND.test(err.stderr)) return;
      throw err;
    }
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
      const batch = [
        `link set ${name} up`,
        `address add ${spec.address}/${side.prefix} dev ${name}`,
        `route replace ${side.gateway}/32 dev ${name} scope link`,
      ].join('\n');
      await inside(['-batch', '-'], batch + '\n');
      // Another network of the container may hold the default route; only an absent one is added.
      if ((await inside(['-4', 'route', 'show', 'default'])).trim() === '') {
        await inside(['route', 'add', 'default', 'via', side.gateway, 'dev', name]);
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
