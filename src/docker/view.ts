import Docker from 'dockerode';

/**
 * What portnet needs to know from Docker, read through its API. Never call it from a protocol
 * handler: Docker may hold a lock while it waits for the plugin's answer (protocol sheet §0.9), so
 * a synchronous call back into Docker can deadlock. Start-up reconciliation calls it in the
 * background, outside the plugin's Mutex.
 */
export interface DockerView {
  /** Every network Docker has, with its endpoints. Rejects when Docker does not answer in time. */
  networks(): Promise<DockerNetwork[]>;
}

export interface DockerNetwork {
  id: string;
  name: string;
  /** The network driver's name as Docker knows it (a socket plugin's basename, a managed plugin's name:tag). */
  driver: string;
  /** IPAM subnets (CIDR) as Docker recorded them. */
  subnets: string[];
  /** Addresses Docker holds in the subnets other than endpoints': gateways and --aux-address values (no prefix). */
  reserved: string[];
  endpoints: DockerEndpoint[];
}

export interface DockerEndpoint {
  id: string;
  /** The container's ID, or undefined for an endpoint not attached to a sandbox yet (`ep-<id>` entries). */
  containerId?: string;
  name?: string;
  /** IPv4 address without prefix, when it has one. */
  ipv4?: string;
  /** IPv6 address without prefix, when it has one. */
  ipv6?: string;
}

/** Docker did not answer in time or said something unexpected. */
export class DockerUnavailable extends Error {
  override name = 'DockerUnavailable';
}

function withoutPrefix(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const slash = text.indexOf('/');
  return slash < 0 ? text : text.slice(0, slash);
}

interface NetworkInspect {
  Id: string;
  Name: string;
  Driver: string;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> | null }> | null } | null;
  Containers?: Record<string, { Name?: string; EndpointID?: string; IPv4Address?: string; IPv6Address?: string }> | null;
}

/** Turns Docker's `GET /networks/{id}` answer into a DockerNetwork. */
export function fromInspect(n: NetworkInspect): DockerNetwork {
  const config = n.IPAM?.Config ?? [];
  const reserved: string[] = [];
  for (const c of config) {
    const gw = withoutPrefix(c.Gateway);
    if (gw) reserved.push(gw);
    for (const a of Object.values(c.AuxiliaryAddresses ?? {})) {
      const aux = withoutPrefix(a);
      if (aux) reserved.push(aux);
    }
  }
  const endpoints: DockerEndpoint[] = [];
  for (const [key, c] of Object.entries(n.Containers ?? {})) {
    if (!c.EndpointID) continue;
    const ipv4 = withoutPrefix(c.IPv4Address);
    const ipv6 = withoutPrefix(c.IPv6Address);
    endpoints.push({
      id: c.EndpointID,
      ...(key.startsWith('ep-') ? {} : { containerId: key }),
      ...(c.Name ? { name: c.Name } : {}),
      ...(ipv4 ? { ipv4 } : {}),
      ...(ipv6 ? { ipv6 } : {}),
    });
  }
  return {
    id: n.Id,
    name: n.Name,
    driver: n.Driver,
    subnets: config.map((c) => c.Subnet).filter((s): s is string => typeof s === 'string' && s !== ''),
    reserved,
    endpoints,
  };
}

export interface DockerodeViewOptions {
  /** Docker's API socket; default: DOCKER_HOST when set, else /var/run/docker.sock. */
  socketPath?: string;
  /** Deadline for the whole read (list + one inspect per network). */
  timeoutMs?: number;
}

/** DockerView over dockerode. Reads only; portnet never changes anything in Docker. */
export class DockerodeView implements DockerView {
  private readonly docker: Docker;
  private readonly timeoutMs: number;

  constructor(options: DockerodeViewOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const socketPath = options.socketPath ?? (process.env.DOCKER_HOST ? undefined : '/var/run/docker.sock');
    this.docker = new Docker({ ...(socketPath ? { socketPath } : {}), timeout: this.timeoutMs });
  }

  async networks(): Promise<DockerNetwork[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DockerUnavailable(`Docker did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([this.read(), deadline]);
    } catch (err) {
      if (err instanceof DockerUnavailable) throw err;
      throw new DockerUnavailable(`Docker's API failed: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private async read(): Promise<DockerNetwork[]> {
    const list = (await this.docker.listNetworks()) as Array<{ Id: string }>;
    const out: DockerNetwork[] = [];
    for (const { Id } of list) {
      try {
        out.push(fromInspect((await this.docker.getNetwork(Id).inspect()) as NetworkInspect));
      } catch (err) {
        // Removed between the list and the inspect: it is gone, which is what the list will say next time.
        if ((err as { statusCode?: number }).statusCode === 404) continue;
        throw err;
      }
    }
    return out;
  }
}

/** DockerView for tests: answers what it is given, or fails like an absent Docker. */
export class FakeDockerView implements DockerView {
  nets: DockerNetwork[] = [];
  /** When set, networks() rejects with this (DockerUnavailable) every time. */
  down: string | undefined;
  calls = 0;
  /** Runs inside networks() after Docker's answer is taken and before it arrives (a slow Docker). */
  during: (() => Promise<void> | void) | undefined;

  async networks(): Promise<DockerNetwork[]> {
    this.calls++;
    if (this.down) throw new DockerUnavailable(this.down);
    const answer = structuredClone(this.nets);
    await this.during?.();
    return answer;
  }
}
