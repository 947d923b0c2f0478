import type { Logger } from 'pino';
import type { State } from '../state/state.js';

/**
 * Which container an endpoint belongs to, learnt from Docker in the background.
 *
 * Docker never tells a remote driver the container (protocol sheet §0.8), and asking Docker while a
 * protocol call is open can deadlock it: containerStart holds the container lock while it waits for
 * our Join, and Docker's v1 plugin client has no timeout (§0.9, §4.4). So nothing here is ever
 * awaited by a protocol handler. After a Join has been answered, a poll of NetworkInspect (every
 * 100 ms, as Calico does, one loop per network however many endpoints wait) finds the endpoint in the
 * network's Containers map; `network connect` events and a full pass at start-up and whenever Docker
 * comes back catch the rest. Until then the name is unknown and `portnet ls` shows "?". Docker may be
 * absent (portnet starts before it): every failure only marks Docker unreachable and is retried.
 */

export interface ContainerRef {
  /** Undefined while Docker lists the endpoint without its sandbox (key `ep-…`). */
  id?: string;
  name: string;
}

export interface DockerNetworkInfo {
  name: string;
  /** NetworkInspect's Containers map: key is the container ID, or `ep-<endpoint ID>` while not attached. */
  containers: Array<{ key: string; name: string; endpointId: string }>;
}

export interface DockerEvent {
  type: string;
  action: string;
  actorId: string;
  attributes: Record<string, string>;
}

/** The little of Docker's API this needs; one implementation over dockerode, fakes in tests. */
export interface DockerNameSource {
  /** Undefined when Docker does not know the network (404). Rejects when Docker cannot be reached. */
  inspectNetwork(networkId: string): Promise<DockerNetworkInfo | undefined>;
  /**
   * Streams `network connect` and container `rename` events. Resolves with a stop function once the
   * stream is open; `onEnd` is called once when it closes or fails.
   */
  watchEvents(onEvent: (event: DockerEvent) => void, onEnd: (err?: Error) => void): Promise<() => void>;
  /** Where Docker is expected, for messages. */
  readonly where: string;
}

export interface DockerStatus {
  /** Undefined before the first attempt. */
  reachable?: boolean;
  where?: string;
  error?: string;
}

export interface NameOptions {
  pollMs?: number;
  /** How long after a Join to keep looking for its container. */
  pollForMs?: number;
  /** Wait before re-opening the event stream; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

const DEFAULTS: Required<NameOptions> = { pollMs: 100, pollForMs: 10_000, backoffMs: 1000, maxBackoffMs: 30_000 };

export class ContainerNames {
  private readonly byEndpoint = new Map<string, ContainerRef>();
  private readonly networkNames = new Map<string, string>();
  /** Endpoint ID → deadline, per network, for endpoints still waiting for their container ID. */
  private readonly waiting = new Map<string, Map<string, number>>();
  private readonly polling = new Set<string>();
  private readonly options: Required<NameOptions>;
  private status: DockerStatus = {};
  private stopEvents: (() => void) | undefined;
  private stopped = true;
  private backoff: number;
  private timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly state: State,
    private readonly source: DockerNameSource | undefined,
    private readonly log: Logger,
    options: NameOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
    this.backoff = this.options.backoffMs;
    if (source) this.status.where = source.where;
  }

  /** The container of an endpoint, when known. */
  container(endpointId: string): ContainerRef | undefined {
    return this.byEndpoint.get(endpointId);
  }

  /** Docker's name of a network, when known. */
  networkName(networkId: string): string | undefined {
    return this.networkNames.get(networkId);
  }

  docker(): DockerStatus {
    return this.source ? { ...this.status } : { reachable: false, error: 'no Docker client configured' };
  }

  /** Call after Join has been answered: looks for the endpoint's container in the background. */
  afterJoin(networkId: string, endpointId: string): void {
    if (!this.source) return;
    let net = this.waiting.get(networkId);
    if (!net) this.waiting.set(networkId, (net = new Map()));
    net.set(endpointId, Date.now() + this.options.pollForMs);
    this.poll(networkId);
  }

  /** Call after DeleteEndpoint. */
  forget(endpointId: string): void {
    this.byEndpoint.delete(endpointId);
    for (const net of this.waiting.values()) net.delete(endpointId);
  }

  /** Learns every name once, then follows Docker's events (re-opened with back-off when they stop). */
  start(): void {
    if (!this.source || !this.stopped) return;
    this.stopped = false;
    void this.openEvents();
  }

  stop(): void {
    this.stopped = true;
    this.stopEvents?.();
    this.stopEvents = undefined;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Asks Docker about every portnet network now (the start-up pass; also after Docker came back). */
  async refreshAll(): Promise<void> {
    for (const n of this.state.networks()) {
      try {
        await this.refreshNetwork(n.id);
      } catch {
        return; // unreachable: reported by refreshNetwork, retried when the event stream reopens
      }
    }
    const live = new Set(this.state.endpoints().map((e) => e.id));
    for (const id of this.byEndpoint.keys()) if (!live.has(id)) this.byEndpoint.delete(id);
  }

  /** Reads one network's Containers map and records the container of every endpoint portnet holds. */
  async refreshNetwork(networkId: string): Promise<void> {
    const source = this.source;
    if (!source) return;
    let info: DockerNetworkInfo | undefined;
    try {
      info = await source.inspectNetwork(networkId);
    } catch (err) {
      this.unreachable(err);
      throw err;
    }
    this.reachable();
    if (!info) return;
    this.networkNames.set(networkId, info.name);
    const waiting = this.waiting.get(networkId);
    for (const c of info.containers) {
      const endpoint = this.state.endpoint(c.endpointId);
      if (!endpoint || endpoint.networkId !== networkId || c.name === '') continue;
      const attached = !c.key.startsWith('ep-');
      const known = this.byEndpoint.get(c.endpointId);
      if (attached) {
        this.byEndpoint.set(c.endpointId, { id: c.key, name: c.name });
        waiting?.delete(c.endpointId);
      } else if (!known) {
        // Docker lists the endpoint by name before its sandbox exists: the name is right already.
        this.byEndpoint.set(c.endpointId, { name: c.name });
      }
      if (known?.name !== c.name) {
        // The line that ties an endpoint of the protocol log to its container.
        this.log.info({ network: networkId.slice(0, 12), endpoint: c.endpointId.slice(0, 12), container: c.name }, 'container of endpoint learnt');
      }
    }
  }

  private poll(networkId: string): void {
    if (this.polling.has(networkId)) return;
    this.polling.add(networkId);
    // Always a timer, never a call in this tick: the protocol answer goes out before Docker is asked.
    this.later(this.options.pollMs, () => void this.pollOnce(networkId));
  }

  private async pollOnce(networkId: string): Promise<void> {
    const waiting = this.waiting.get(networkId);
    try {
      await this.refreshNetwork(networkId);
    } catch {
      /* reported; keep trying until the deadline */
    }
    const now = Date.now();
    if (waiting) {
      for (const [endpointId, deadline] of waiting) {
        if (deadline <= now || !this.state.endpoint(endpointId)) waiting.delete(endpointId);
      }
      if (waiting.size === 0) this.waiting.delete(networkId);
    }
    if (!this.waiting.has(networkId)) {
      this.polling.delete(networkId);
      return;
    }
    this.later(this.options.pollMs, () => void this.pollOnce(networkId));
  }

  private async openEvents(): Promise<void> {
    const source = this.source;
    if (!source || this.stopped) return;
    let stop: () => void;
    try {
      stop = await source.watchEvents(
        (e) => this.onEvent(e),
        (err) => {
          this.stopEvents = undefined;
          if (this.stopped) return;
          if (err) this.unreachable(err);
          this.retryEvents();
        },
      );
    } catch (err) {
      this.unreachable(err);
      this.retryEvents();
      return;
    }
    if (this.stopped) {
      stop();
      return;
    }
    this.stopEvents = stop;
    this.backoff = this.options.backoffMs;
    this.reachable();
    // Anything that happened while the stream was closed (or before portnet started).
    await this.refreshAll().catch(() => {});
  }

  private retryEvents(): void {
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.options.maxBackoffMs);
    this.later(wait, () => void this.openEvents());
  }

  private onEvent(e: DockerEvent): void {
    if (e.type === 'network' && e.action === 'connect' && this.state.network(e.actorId)) {
      // Which endpoint it is shows in the network's Containers map: look there, as after a Join.
      const unresolved = this.state.endpoints().filter((ep) => ep.networkId === e.actorId && !this.byEndpoint.get(ep.id)?.id);
      for (const ep of unresolved) this.afterJoin(e.actorId, ep.id);
    } else if (e.type === 'container' && e.action === 'rename') {
      const name = (e.attributes.name ?? '').replace(/^\//, '');
      if (name === '') return;
      for (const [endpointId, ref] of this.byEndpoint) if (ref.id === e.actorId) this.byEndpoint.set(endpointId, { ...ref, name });
    }
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private reachable(): void {
    if (this.status.reachable === false) this.log.info({ docker: this.status.where }, 'Docker answers again; container names are being learnt');
    this.status = { reachable: true, ...(this.status.where ? { where: this.status.where } : {}) };
  }

  private unreachable(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.status.reachable !== false) {
      this.log.warn({ docker: this.status.where, err: message }, 'Docker cannot be reached; container names show as "?" until it can (retrying)');
    }
    this.status = { reachable: false, ...(this.status.where ? { where: this.status.where } : {}), error: message };
  }
}

/**
 * DockerNameSource over dockerode. Docker's address comes from DOCKER_HOST as for the docker CLI
 * (default /var/run/docker.sock). Requests time out after 5 s; the event stream has no timeout.
 */
export async function dockerodeSource(): Promise<DockerNameSource> {
  const { default: Docker } = await import('dockerode');
  const api = new Docker({ timeout: 5000 });
  const events = new Docker();
  const host = process.env.DOCKER_HOST;
  return {
    where: host && host !== '' ? host : 'unix:///var/run/docker.sock',
    async inspectNetwork(networkId) {
      let raw: { Name?: string; Containers?: Record<string, { Name?: string; EndpointID?: string }> | null };
      try {
        raw = (await api.getNetwork(networkId).inspect()) as typeof raw;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined;
        throw err;
      }
      return {
        name: raw.Name ?? '',
        containers: Object.entries(raw.Containers ?? {}).map(([key, c]) => ({ key, name: c.Name ?? '', endpointId: c.EndpointID ?? '' })),
      };
    },
    async watchEvents(onEvent, onEnd) {
      const stream = (await events.getEvents({
        filters: JSON.stringify({ type: ['network', 'container'], event: ['connect', 'rename'] }),
      })) as NodeJS.ReadableStream & { destroy(): void };
      let buffer = '';
      let ended = false;
      const end = (err?: Error) => {
        if (ended) return;
        ended = true;
        onEnd(err);
      };
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffer += chunk;
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line === '') continue;
          try {
            const e = JSON.parse(line) as { Type?: string; Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
            onEvent({ type: e.Type ?? '', action: e.Action ?? '', actorId: e.Actor?.ID ?? '', attributes: e.Actor?.Attributes ?? {} });
          } catch {
            /* not an event: ignore the line */
          }
        }
        if (buffer.length > 1 << 20) buffer = ''; // a line this long is not an event
      });
      stream.on('error', (err: Error) => end(err));
      stream.on('end', () => end(new Error('Docker closed the event stream')));
      stream.on('close', () => end(new Error('Docker closed the event stream')));
      return () => {
        ended = true;
        stream.destroy();
      };
    },
  };
}
