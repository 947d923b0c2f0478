import type { EndpointLinkSpec, Links } from './links.js';

/** In-memory Links for unit tests; `failNext` makes the next create fail like the kernel would. */
export class FakeLinks implements Links {
  readonly links = new Map<string, EndpointLinkSpec>();
  readonly poolRoutes = new Set<string>();
  failNext?: string;

  async createEndpointLink(spec: EndpointLinkSpec): Promise<void> {
    if (this.failNext) {
      const message = this.failNext;
      this.failNext = undefined;
      throw new Error(message);
    }
    if (this.links.has(spec.hostIf)) throw new Error(`RTNETLINK answers: File exists (${spec.hostIf})`);
    this.links.set(spec.hostIf, spec);
  }
  async deleteEndpointLink(hostIf: string): Promise<void> {
    this.links.delete(hostIf);
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
      ...[...this.links.values()].map((l) => `${l.address} dev ${l.hostIf} scope link`),
    ];
  }
}
