import { writeFile } from 'node:fs/promises';
import { CommandError, runCommand } from './exec.js';
import { type EndpointLinkSpec, type Links, HOST_IF_PREFIX, POOL_ROUTE_METRIC, ROUTE_PROTO } from './links.js';

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

/** Links over iproute2 (batched on stdin, one process per operation) and /proc/sys writes. */
export class IprouteLinks implements Links {
  constructor(private readonly ip = 'ip') {}

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
      for (const [path, value] of HOST_SIDE_SYSCTLS) {
        await writeFile(`/proc/sys/net/${path.replace('%s', spec.hostIf)}`, value);
      }
    } catch (err) {
      await this.deleteEndpointLink(spec.hostIf).catch(() => {});
      throw err;
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
    return out
      .split('\n')
      .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined && name.startsWith(HOST_IF_PREFIX));
  }

  async listRoutes(): Promise<string[]> {
    const out = await runCommand(this.ip, ['-4', 'route', 'show', 'proto', ROUTE_PROTO]);
    return out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }
}
