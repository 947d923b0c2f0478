import type { Logger } from 'pino';
import { countRepair } from '../metrics/metrics.js';

/** What reconciliation found and did, one entry per finding; each is also logged as it happens. */
export interface Repair {
  /** A stable name for the kind of finding, e.g. `orphan-link` (tests and dashboards key on it). */
  kind: RepairKind;
  /** What was done, in words an operator can act on. */
  message: string;
  /** The objects involved (link, route, endpoint, address, …). */
  detail: Record<string, unknown>;
  /** False when the finding could not be repaired (the message says why and what to do). */
  repaired: boolean;
}

export type RepairKind =
  | 'pool-route-missing'
  | 'orphan-pool-route'
  | 'orphan-link'
  | 'orphan-endpoint-route'
  | 'endpoint-route-missing'
  | 'veth-restored'
  | 'veth-lost'
  | 'firewall-missing'
  | 'unknown-route'
  | 'endpoint-unknown-to-docker'
  | 'network-unknown-to-docker'
  | 'pool-unknown-to-docker'
  | 'address-unknown-to-docker'
  | 'docker-endpoint-without-veth';

/** Collects repairs and logs each one: warn for a repair made, error for one that needs a person. */
export class RepairLog {
  readonly repairs: Repair[] = [];

  constructor(private readonly log: Logger) {}

  add(kind: RepairKind, message: string, detail: Record<string, unknown>, repaired = true): void {
    this.repairs.push({ kind, message, detail, repaired });
    countRepair(kind);
    if (repaired) this.log.warn({ repair: kind, ...detail }, message);
    else this.log.error({ repair: kind, ...detail }, message);
  }
}
