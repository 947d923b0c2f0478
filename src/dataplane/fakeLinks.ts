import { checkSandboxPath, firstFreeEth, type EndpointLinkSpec, type Ipv6ForwardingChange, type Links, type SandboxSide } from './links.js';

/** In-memory Links for unit tests; `failNext` makes the next create fail like the kernel would. */
export class FakeLinks implements Links {
  readonly links = new Map<string, EndpointLinkSpec>();
  readonly poolRoutes = new Set<string>();
  /** /32 and /128 routes: address → host-side link. createEndpointLink adds them, deleting the link takes them away. */
  readonly endpointRoutes = new Map<string, string>();
  /** Host-side links holding a `local ::1` route (IPv6 endpoints). */
  readonly loopbackRoutes = new Set<string>();
  /** Network namespaces of "running containers": interface name inside → host-side peer ('' for lo). */
  readonly sandboxes = new Map<string, Map<string, string>>();
  /** Host-side links whose sysctls or state were put back by repairEndpointLink. */
  readonly repaired: string[] = [];
  /** net.ipv6.conf.all.forwarding, and the interfaces whose accept_ra is 1 (switched to 2 when it is turned on). */
  ipv6Forwarding = false;
  acceptRa1 = new Set<string>();
  failNext?: string;
  /** A pool whose route the "kernel" refuses. */
  failPoolRoute?: string;

  async createEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    this.throwIfFailing();
    if (this.links.has(spec.hostIf)) throw new Error(`RTNETLINK answers: File exists (${spec.hostIf})`);
    this.links.set(spec.hostIf, spec);
    this.addRoutes(spec);
  }
  async deleteEndpointLink(hostIf: string): Promise<void> {
    this.links.delete(hostIf);
    this.dropRoutes(hostIf);
    // The container side of a pair dies with it.
    for (const inside of this.sandboxes.values()) for (const [name, peer] of inside) if (peer === hostIf) inside.delete(name);
  }
  async addPoolRoute(cidr: string): Promise<void> {
    if (this.failPoolRoute === cidr) throw new Error(`RTNETLINK answers: Invalid argument (${cidr})`);
    this.poolRoutes.add(cidr);
  }
  async removePoolRoute(cidr: string): Promise<void> {
    this.poolRoutes.delete(cidr);
  }
  async listEndpointLinks(): Promise<string[]> {
    return [...this.links.keys()];
  }
  async listRoutes(): Promise<string[]> {
    // As `ip` prints them: IPv4 host routes with `scope link`, IPv6 ones with metric and pref.
    return [
      ...[...this.poolRoutes].map((c) => (c.includes(':') ? `unreachable ${c} dev lo metric 3999 pref medium` : `unreachable ${c} metric 3999`)),
      ...[...this.endpointRoutes].map(([address, dev]) => (address.includes(':') ? `${address} dev ${dev} metric 1024 pref medium` : `${address} dev ${dev} scope link`)),
      ...[...this.loopbackRoutes].map((dev) => `local ::1 dev ${dev} metric 1024 pref medium`),
    ];
  }
  async repairEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    if (!this.links.has(spec.hostIf)) throw new Error(`Cannot find device "${spec.hostIf}"`);
    // Like the kernel: turning IPv6 off on an IPv4-only link takes its IPv6 routes with it.
    if (spec.address6 === undefined) {
      this.loopbackRoutes.delete(spec.hostIf);
      for (const [address, dev] of this.endpointRoutes) if (dev === spec.hostIf && address.includes(':')) this.endpointRoutes.delete(address);
    }
    this.addRoutes(spec);
    this.repaired.push(spec.hostIf);
  }
  async removeEndpointRoute(address: string, dev: string): Promise<void> {
    if (this.endpointRoutes.get(address) === dev) this.endpointRoutes.delete(address);
  }
  async enableIpv6Forwarding(): Promise<Ipv6ForwardingChange | undefined> {
    this.throwIfFailing();
    if (this.ipv6Forwarding) return undefined;
    const acceptRa = [...this.acceptRa1].sort();
    this.acceptRa1.clear();
    this.ipv6Forwarding = true;
    return { acceptRa };
  }
  async sandboxExists(sandbox: string): Promise<boolean> {
    return this.sandboxes.has(checkSandboxPath(sandbox));
  }
  async restoreEndpointLink(spec: EndpointLinkSpec, side: SandboxSide): Promise<string> {
    this.throwIfFailing();
    const inside = this.sandboxes.get(checkSandboxPath(side.sandbox));
    if (!inside) throw new Error(`nsenter: cannot open ${side.sandbox}: No such file or directory`);
    if (this.links.has(spec.hostIf)) throw new Error(`RTNETLINK answers: File exists (${spec.hostIf})`);
    const name = firstFreeEth([...inside.keys()]);
    inside.set(name, spec.hostIf);
    this.links.set(spec.hostIf, spec);
    this.addRoutes(spec);
    this.restored.push({ spec, side, name });
    return name;
  }
  /** What restoreEndpointLink was given, to check the container side's configuration. */
  readonly restored: Array<{ spec: EndpointLinkSpec; side: SandboxSide; name: string }> = [];

  /** Simulates a container whose network namespace exists (with `lo` only, until something is moved in). */
  addSandbox(sandbox: string): void {
    this.sandboxes.set(sandbox, new Map([['lo', '']]));
  }

  private addRoutes(spec: EndpointLinkSpec): void {
    this.endpointRoutes.set(spec.address, spec.hostIf);
    if (spec.address6 !== undefined) {
      this.endpointRoutes.set(spec.address6, spec.hostIf);
      this.loopbackRoutes.add(spec.hostIf);
    }
  }

  private dropRoutes(hostIf: string): void {
    for (const [address, dev] of this.endpointRoutes) if (dev === hostIf) this.endpointRoutes.delete(address);
    this.loopbackRoutes.delete(hostIf);
  }

  private throwIfFailing(): void {
    if (this.failNext) {
      const message = this.failNext;
      this.failNext = undefined;
      throw new Error(message);
    }
  }
}
