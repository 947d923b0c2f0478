import { checkSandboxPath, firstFreeEth, type EndpointLinkSpec, type Links, type SandboxSide } from './links.js';

/** In-memory Links for unit tests; `failNext` makes the next create fail like the kernel would. */
export class FakeLinks implements Links {
  readonly links = new Map<string, EndpointLinkSpec>();
  readonly poolRoutes = new Set<string>();
  /** /32 routes: address → host-side link. createEndpointLink adds one, deleting the link takes it away. */
  readonly endpointRoutes = new Map<string, string>();
  /** Network namespaces of "running containers": interface name inside → host-side peer ('' for lo). */
  readonly sandboxes = new Map<string, Map<string, string>>();
  /** Host-side links whose sysctls or state were put back by repairEndpointLink. */
  readonly repaired: string[] = [];
  failNext?: string;

  async createEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    this.throwIfFailing();
    if (this.links.has(spec.hostIf)) throw new Error(`RTNETLINK answers: File exists (${spec.hostIf})`);
    this.links.set(spec.hostIf, spec);
    this.endpointRoutes.set(spec.address, spec.hostIf);
  }
  async deleteEndpointLink(hostIf: string): Promise<void> {
    this.links.delete(hostIf);
    for (const [address, dev] of this.endpointRoutes) if (dev === hostIf) this.endpointRoutes.delete(address);
    // The container side of a pair dies with it.
    for (const inside of this.sandboxes.values()) for (const [name, peer] of inside) if (peer === hostIf) inside.delete(name);
  }
  async addPoolRoute(cidr: string): Promise<void> {
    this.poolRoutes.add(cidr);
  }
  async removePoolRoute(cidr: string): Promise<void> {
    this.poolRoutes.delete(cidr);
  }
  async listEndpointLinks(): Promise<string[]> {
    return [...this.links.keys()];
  }
  async listRoutes(): Promise<string[]> {
    return [
      ...[...this.poolRoutes].map((c) => `unreachable ${c} metric 3999`),
      ...[...this.endpointRoutes].map(([address, dev]) => `${address} dev ${dev} scope link`),
    ];
  }
  async repairEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    if (!this.links.has(spec.hostIf)) throw new Error(`Cannot find device "${spec.hostIf}"`);
    this.endpointRoutes.set(spec.address, spec.hostIf);
    this.repaired.push(spec.hostIf);
  }
  async removeEndpointRoute(address: string, dev: string): Promise<void> {
    if (this.endpointRoutes.get(address) === dev) this.endpointRoutes.delete(address);
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
    this.endpointRoutes.set(spec.address, spec.hostIf);
    return name;
  }

  /** Simulates a container whose network namespace exists (with `lo` only, until something is moved in). */
  addSandbox(sandbox: string): void {
    this.sandboxes.set(sandbox, new Map([['lo', '']]));
  }

  private throwIfFailing(): void {
    if (this.failNext) {
      const message = this.failNext;
      this.failNext = undefined;
      throw new Error(message);
    }
  }
}
