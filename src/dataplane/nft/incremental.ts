import type { FirewallEndpoint, FirewallModel, ResolvedExposure } from '../model.js';
import { elementId, endpointElements, networkElements, type Element } from './elements.js';
import type { ElementDelta } from './render.js';
import { checkDnatConflicts, planEndpoint, planNetworks, planRuleset, type EndpointPlan, type NetworkPlan, type RulesetPlan } from './plan.js';

/**
 * What portnet's table holds after the last transaction that succeeded, kept per endpoint so that
 * the next model can be turned into a delta by looking only at what changed.
 *
 * The driver hands the firewall the whole model on every change. Comparing it with these contents
 * is one pass of cheap comparisons over the endpoints (no planning, no text), and only endpoints
 * that are new, changed or gone are planned and turned into elements. Planning the whole model
 * again (planRuleset) is the slow path: when the networks changed, and whenever the fast path
 * suspects the model is invalid, so that errors are always planRuleset's own.
 */

interface Entry {
  /** A copy of the endpoint as last applied, to recognise it unchanged. */
  input: FirewallEndpoint;
  /** Canonical interface name and address, and the host ports it claims (see claimKeys). */
  hostIf: string;
  address: string;
  claims: string[];
  elements: Element[];
  /** The last transition that saw this endpoint in its model (finds duplicates and removals without a Set). */
  seen: number;
}

interface Counted {
  element: Element;
  count: number;
}

/** A computed change: the elements to send, and how to record them once nft has taken them. */
export interface Transition {
  delta: ElementDelta;
  /** Whether the slow path (a full plan of the model) computed it. */
  full: boolean;
  /** Records the change as applied: call only after the transaction succeeded. */
  commit(): void;
}

export class TableContents {
  private networksKey: string;
  private networkElems: Element[];
  private readonly entries = new Map<string, Entry>();
  /** Reference counts of every element in the table, by elementId. */
  private counts = new Map<string, Counted>();
  /** Who holds an interface name, an address, a host-port claim (fast-path conflict checks). */
  private readonly owners = new Map<string, string>();
  /** `proto port` → endpoints with an exposure bound to some host address on that port. */
  private readonly boundPorts = new Map<string, Set<string>>();
  /** Counts transitions, for Entry.seen. */
  private generation = 0;

  private constructor(plan: RulesetPlan, model: FirewallModel) {
    this.networksKey = networksKey(plan.networks);
    this.networkElems = networkElements(plan);
    for (const e of this.networkElems) this.count(e, 1);
    // planRuleset keeps canonical values only; the entries remember the input to compare with.
    const inputs = new Map(model.endpoints.map((e) => [e.id, e]));
    for (const ep of plan.endpoints) this.addEntry(entryOf(inputs.get(ep.id)!, ep));
  }

  /** The contents the full ruleset of `plan` (planned from `model`) creates. */
  static fromPlan(plan: RulesetPlan, model: FirewallModel): TableContents {
    return new TableContents(plan, model);
  }

  /** Number of elements in the table (tests and the benchmark). */
  get size(): number {
    return this.counts.size;
  }

  /** Every element in the table, as elementId strings, sorted (tests). */
  elementIds(): string[] {
    return [...this.counts.keys()].sort();
  }

  /**
   * The change from these contents to the contents of `model`. Throws FirewallModelError, the
   * same error planRuleset would throw, when the model is invalid; nothing changes until commit().
   */
  transition(model: FirewallModel): Transition {
    return this.fastTransition(model) ?? this.slowTransition(model);
  }

  /** undefined when the fast path cannot vouch for the model (the slow path decides). */
  private fastTransition(model: FirewallModel): Transition | undefined {
    let networks: NetworkPlan[];
    try {
      networks = planNetworks(model.networks);
    } catch {
      return undefined;
    }
    if (networksKey(networks) !== this.networksKey) return undefined;

    // One pass of cheap comparisons: this is the part that still grows with the number of endpoints.
    const generation = ++this.generation;
    const newIds = new Set<string>();
    const changed: FirewallEndpoint[] = [];
    let present = 0;
    for (const e of model.endpoints) {
      const old = this.entries.get(e.id);
      if (old) {
        if (old.seen === generation) return undefined; // the same id twice
        old.seen = generation;
        present++;
        if (sameEndpoint(old.input, e)) continue;
      } else {
        if (newIds.has(e.id)) return undefined;
        newIds.add(e.id);
      }
      changed.push(e);
    }
    const gone = new Set<string>(changed.map((e) => e.id));
    if (present < this.entries.size) {
      for (const [id, entry] of this.entries) if (entry.seen !== generation) gone.add(id);
    }
    if (changed.length === 0 && gone.size === 0) return emptyTransition();

    // Plan the changed endpoints alone; any doubt and the full plan has the last word.
    const byId = new Map(networks.map((n) => [n.id, n]));
    const fresh: Entry[] = [];
    try {
      for (const e of changed) {
        const ep = planEndpoint(e, byId);
        checkDnatConflicts([ep]);
        fresh.push(entryOf(e, ep));
      }
    } catch {
      return undefined;
    }
    if (!this.claimsAreFree(fresh, gone)) return undefined;

    const change = new Map<string, Counted>();
    const bump = (e: Element, by: number) => {
      const id = elementId(e);
      const c = change.get(id);
      if (c) c.count += by;
      else change.set(id, { element: e, count: by });
    };
    for (const id of gone) for (const e of this.entries.get(id)?.elements ?? []) bump(e, -1);
    for (const entry of fresh) for (const e of entry.elements) bump(e, 1);
    const delta: ElementDelta = { deletes: [], adds: [] };
    for (const [id, c] of change) {
      const before = this.counts.get(id)?.count ?? 0;
      const after = before + c.count;
      if (before > 0 && after === 0) delta.deletes.push(c.element);
      else if (before === 0 && after > 0) delta.adds.push(c.element);
    }
    return {
      delta,
      full: false,
      commit: () => {
        for (const id of gone) {
          const old = this.entries.get(id);
          if (old) this.removeEntry(old);
        }
        for (const entry of fresh) this.addEntry(entry);
      },
    };
  }

  /** Every interface name, address and host port the changed endpoints want is free (or theirs). */
  private claimsAreFree(fresh: Entry[], gone: Set<string>): boolean {
    const live = (owner: string | undefined) => owner !== undefined && !gone.has(owner);
    const mine = new Map<string, string>();
    const myBound = new Map<string, string>();
    for (const entry of fresh) {
      for (const key of [`if ${entry.hostIf}`, `ip ${entry.address}`, ...entry.claims]) {
        if (live(this.owners.get(key))) return false;
        if (mine.has(key)) return false;
        mine.set(key, entry.input.id);
        if (key.startsWith('b ')) {
          const port = boundPort(key);
          myBound.set(port, entry.input.id);
          // A bound claim clashes with an all-addresses claim on the same port, and vice versa.
          if (live(this.owners.get(`a ${port}`))) return false;
        } else if (key.startsWith('a ')) {
          for (const holder of this.boundPorts.get(key.slice(2)) ?? []) if (!gone.has(holder)) return false;
        }
      }
    }
    for (const [port, holder] of myBound) {
      const other = mine.get(`a ${port}`);
      if (other !== undefined && other !== holder) return false;
      // The same endpoint holding both was refused by checkDnatConflicts already.
    }
    return true;
  }

  private slowTransition(model: FirewallModel): Transition {
    const plan = planRuleset(model);
    const next = TableContents.fromPlan(plan, model);
    const delta: ElementDelta = { deletes: [], adds: [] };
    for (const [id, c] of this.counts) if (!next.counts.has(id)) delta.deletes.push(c.element);
    for (const [id, c] of next.counts) if (!this.counts.has(id)) delta.adds.push(c.element);
    return {
      delta,
      full: true,
      commit: () => this.takeOver(next),
    };
  }

  private takeOver(next: TableContents): void {
    this.networksKey = next.networksKey;
    this.networkElems = next.networkElems;
    this.counts = next.counts;
    this.entries.clear();
    this.owners.clear();
    this.boundPorts.clear();
    for (const [id, entry] of next.entries) this.entries.set(id, entry);
    for (const [k, v] of next.owners) this.owners.set(k, v);
    for (const [k, v] of next.boundPorts) this.boundPorts.set(k, v);
  }

  private addEntry(entry: Entry): void {
    const id = entry.input.id;
    this.entries.set(id, entry);
    this.owners.set(`if ${entry.hostIf}`, id);
    this.owners.set(`ip ${entry.address}`, id);
    for (const key of entry.claims) {
      this.owners.set(key, id);
      if (key.startsWith('b ')) {
        const port = boundPort(key);
        let holders = this.boundPorts.get(port);
        if (!holders) this.boundPorts.set(port, (holders = new Set()));
        holders.add(id);
      }
    }
    for (const e of entry.elements) this.count(e, 1);
  }

  private removeEntry(entry: Entry): void {
    const id = entry.input.id;
    this.entries.delete(id);
    for (const key of [`if ${entry.hostIf}`, `ip ${entry.address}`, ...entry.claims]) {
      if (this.owners.get(key) === id) this.owners.delete(key);
      if (key.startsWith('b ')) {
        const port = boundPort(key);
        const holders = this.boundPorts.get(port);
        holders?.delete(id);
        if (holders?.size === 0) this.boundPorts.delete(port);
      }
    }
    for (const e of entry.elements) this.count(e, -1);
  }

  private count(e: Element, by: number): void {
    const id = elementId(e);
    const c = this.counts.get(id);
    if (!c) {
      if (by > 0) this.counts.set(id, { element: e, count: by });
      return;
    }
    c.count += by;
    if (c.count <= 0) this.counts.delete(id);
  }
}

function emptyTransition(): Transition {
  return { delta: { deletes: [], adds: [] }, full: false, commit: () => {} };
}

function entryOf(input: FirewallEndpoint, ep: EndpointPlan): Entry {
  return { input: copyEndpoint(input), hostIf: ep.hostIf, address: ep.address, claims: claimKeys(ep), elements: endpointElements(ep), seen: 0 };
}

/**
 * The host ports an endpoint holds, as checkDnatConflicts sees them: `a PROTO PORT` on every
 * address, `b IP PROTO PORT` on one address.
 */
function claimKeys(ep: EndpointPlan): string[] {
  const out: string[] = [];
  for (const { exposure: x, kind } of ep.exposures) {
    if (kind === 'skipped') continue;
    for (let p = x.hostPort; p <= x.hostPortEnd; p++) {
      out.push(kind === 'all' ? `a ${x.proto} ${p}` : `b ${x.hostIp} ${x.proto} ${p}`);
    }
  }
  return out;
}

/** `b IP PROTO PORT` → `PROTO PORT`. */
function boundPort(key: string): string {
  const parts = key.split(' ');
  return `${parts[2]} ${parts[3]}`;
}

function networksKey(networks: NetworkPlan[]): string {
  return JSON.stringify(networks.map((n) => [n.id, n.index, n.pools.map((p) => p.text), n.icc, n.masquerade]));
}

function copyEndpoint(e: FirewallEndpoint): FirewallEndpoint {
  return {
    id: e.id,
    networkId: e.networkId,
    hostIf: e.hostIf,
    address: e.address,
    exposures: e.exposures.map((x) => ({ ...x })),
  };
}

function sameEndpoint(a: FirewallEndpoint, b: FirewallEndpoint): boolean {
  if (a.networkId !== b.networkId || a.hostIf !== b.hostIf || a.address !== b.address) return false;
  if (a.exposures.length !== b.exposures.length) return false;
  for (let i = 0; i < a.exposures.length; i++) if (!sameExposure(a.exposures[i]!, b.exposures[i]!)) return false;
  return true;
}

function sameExposure(a: ResolvedExposure, b: ResolvedExposure): boolean {
  return (
    a.hostPort === b.hostPort &&
    a.hostPortEnd === b.hostPortEnd &&
    a.containerPort === b.containerPort &&
    a.containerPortEnd === b.containerPortEnd &&
    a.proto === b.proto &&
    (a.hostIp ?? '') === (b.hostIp ?? '')
  );
}
