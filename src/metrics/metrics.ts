import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { State } from '../state/state.js';
import { poolUsage } from './usage.js';

/**
 * portnet's Prometheus metrics. Served on the plugin socket at GET /metrics and, with
 * --metrics-port, on 127.0.0.1 (see server.ts).
 *
 *   portnet_requests_total{call,outcome}          protocol calls by endpoint (e.g. NetworkDriver.Join) and
 *                                                  outcome: ok | error | not_implemented
 *   portnet_request_duration_seconds{call}        latency of those calls, lock wait included
 *   portnet_networks, portnet_endpoints           what the state holds now
 *   portnet_endpoints_joined                      endpoints with a container attached (Join without Leave)
 *   portnet_exposures{proto}                      published ports or port ranges, by protocol
 *   portnet_pool_addresses_allocated{pool}        held addresses per pool
 *   portnet_pool_addresses_capacity{pool}         addresses the pool can hand out
 *   portnet_reconcile_repairs_total{kind}         repairs made by reconciliation (countRepair)
 *   portnet_process_* / portnet_nodejs_*          prom-client's default process metrics
 */

/**
 * Calls outside the route table are all counted as this one label value, so a client sending random
 * paths cannot grow the metric without bound.
 */
export const UNKNOWN_CALL = 'unknown';

export type Outcome = 'ok' | 'error' | 'not_implemented';

/** Seconds; protocol calls take a few ms (a commit plus an nft transaction) up to seconds under load. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Repairs are counted process-wide: reconciliation may run before or apart from the HTTP side, and it
 * should not need a handle on the Metrics object. Every Metrics registry exposes this one counter.
 */
const repairs = new Counter({
  name: 'portnet_reconcile_repairs_total',
  help: 'Repairs made by reconciliation between state, Docker and the kernel, by kind',
  labelNames: ['kind'] as const,
  registers: [],
});

/** Counts one repair (or `n`) of `kind`, e.g. countRepair('orphan_link'). Keep `kind` to a small fixed set. */
export function countRepair(kind: string, n = 1): void {
  repairs.inc({ kind }, n);
}

export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'call' | 'outcome'>;
  private readonly latency: Histogram<'call'>;
  private state: State | undefined;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'portnet_requests_total',
      help: 'Protocol calls answered, by endpoint (call) and outcome',
      labelNames: ['call', 'outcome'] as const,
      registers,
    });
    this.latency = new Histogram({
      name: 'portnet_request_duration_seconds',
      help: 'Time to answer a protocol call, waiting for the lock included, by endpoint (call)',
      labelNames: ['call'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const self = this;
    new Gauge({
      name: 'portnet_networks',
      help: 'portnet networks in the state',
      registers,
      collect() {
        this.set(self.state?.networks().length ?? 0);
      },
    });
    new Gauge({
      name: 'portnet_endpoints',
      help: 'Endpoints in the state (created, joined or not)',
      registers,
      collect() {
        this.set(self.state?.endpoints().length ?? 0);
      },
    });
    new Gauge({
      name: 'portnet_endpoints_joined',
      help: 'Endpoints with a container attached (Join without Leave)',
      registers,
      collect() {
        this.set(self.state?.endpoints().filter((e) => e.joined).length ?? 0);
      },
    });
    new Gauge({
      name: 'portnet_exposures',
      help: 'Published ports or port ranges (com.example.expose and -p), by protocol',
      labelNames: ['proto'] as const,
      registers,
      collect() {
        const counts = { tcp: 0, udp: 0, sctp: 0 };
        for (const e of self.state?.endpoints() ?? []) for (const x of e.exposures) counts[x.resolved.proto] += 1;
        for (const [proto, n] of Object.entries(counts)) this.set({ proto }, n);
      },
    });
    new Gauge({
      name: 'portnet_pool_addresses_allocated',
      help: 'Addresses held per pool (endpoints, --ip, --aux-address, gateway requests)',
      labelNames: ['pool'] as const,
      registers,
      collect() {
        this.reset();
        if (self.state) for (const p of poolUsage(self.state)) this.set({ pool: p.pool }, p.allocated);
      },
    });
    new Gauge({
      name: 'portnet_pool_addresses_capacity',
      help: 'Addresses each pool can hand out (its --ip-range if given), network and broadcast excluded',
      labelNames: ['pool'] as const,
      registers,
      collect() {
        this.reset();
        if (self.state) for (const p of poolUsage(self.state)) this.set({ pool: p.pool }, p.capacity);
      },
    });
    this.registry.registerMetric(repairs);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'portnet_' });
  }

  /** The state the gauges read, at scrape time, from the in-memory mirror. */
  watchState(state: State): this {
    this.state = state;
    return this;
  }

  /** One answered protocol call; without `seconds` (refused before it was handled) it is counted, not timed. */
  observeCall(call: string, outcome: Outcome, seconds?: number): void {
    this.requests.inc({ call, outcome });
    if (seconds !== undefined) this.latency.observe({ call }, seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text (Prometheus format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
