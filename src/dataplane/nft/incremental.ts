import type { FirewallEndpoint, FirewallModel, ResolvedExposure } from '../model.js';
import { elementId, endpointElements, networkElements, type Element } from './elements.js';
import type { ElementDelta } from './render.js';
import {
  checkDnatConflicts,
  claimKeys,
  claimsClash,
  type Claim,
  planEndpoint,
  planNetworks,
  planRuleset,
  type EndpointPlan,
  type NetworkPlan,
  type RulesetPlan,
} from './plan.js';

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
  /** Canonical interface name and addresses, and the host ports it claims (see claimKeys). */
  hostIf: string;
  address: string;
  address6: string | undefined;
  claims: Claim[];
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
  /** `F proto port` (Claim.port) → the claims on that port and their holders. */
  private readonly portClaims = new Map<string, PortClaim[]>();
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
    const myPorts = new Map<string, PortClaim[]>();
    for (const entry of fresh) {
      const id = entry.input.id;
      for (const key of [...identityKeys(entry), ...entry.claims.map((c) => c.key)]) {
        if (live(this.owners.get(key)) || mine.has(key)) return false;
        mine.set(key, id);
      }
      // Different claims on one port can still clash (all addresses against one address, say).
      for (const claim of entry.claims) {
        const port = claim.port;
        for (const other of this.portClaims.get(port) ?? []) if (!gone.has(other.id) && claimsClash(other.claim, claim)) return false;
        let list = myPorts.get(port);
        if (!list) myPorts.set(port, (list = []));
        // The same endpoint clashing with itself was refused by checkDnatConflicts already.
        for (const other of list) if (other.id !== id && claimsClash(other.claim, claim)) return false;
        list.push({ claim, id });
      }
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
    this.portClaims.clear();
    for (const [id, entry] of next.entries) this.entries.set(id, entry);
    for (const [k, v] of next.owners) this.owners.set(k, v);
    for (const [k, v] of next.portClaims) this.portClaims.set(k, v);
  }

  private addEntry(entry: Entry): void {
    const id = entry.input.id;
    this.entries.set(id, entry);
    for (const key of identityKeys(entry)) this.owners.set(key, id);
    for (const claim of entry.claims) {
      this.owners.set(claim.key, id);
      const port = claim.port;
      let list = this.portClaims.get(port);
      if (!list) this.portClaims.set(port, (list = []));
      list.push({ claim, id });
    }
    for (const e of entry.elements) this.count(e, 1);
  }

  private removeEntry(entry: Entry): void {
    const id = entry.input.id;
    this.entries.delete(id);
    for (const key of [...identityKeys(entry), ...entry.claims.map((c) => c.key)]) if (this.owners.get(key) === id) this.owners.delete(key);
    for (const claim of entry.claims) {
      const port = claim.port;
      // A handful of claims per port at most (one address or interface each): a scan is fine.
      const rest = (this.portClaims.get(port) ?? []).filter((c) => c.id !== id);
      if (rest.length > 0) this.portClaims.set(port, rest);
      else this.portClaims.delete(port);
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

interface PortClaim {
  claim: Claim;
  id: string;
}

function entryOf(input: FirewallEndpoint, ep: EndpointPlan): Entry {
  return {
    input: copyEndpoint(input),
    hostIf: ep.hostIf,
    address: ep.address,
    address6: ep.address6,
    claims: claimKeys(ep),
    elements: endpointElements(ep),
    seen: 0,
  };
}

/** What no two endpoints may share besides host ports: the veth name and the addresses. */
function identityKeys(entry: Entry): string[] {
  const keys = [`if ${entry.hostIf}`, `ip ${entry.address}`];
  if (entry.address6 !== undefined) keys.push(`ip6 ${entry.address6}`);
  return keys;
}

function networksKey(networks: NetworkPlan[]): string {
  return JSON.stringify(
    networks.map((n) => [n.id, n.index, n.pools.map((p) => p.text), n.pools6.map((p) => p.text), n.icc, n.masquerade]),
  );
}

function copyEndpoint(e: FirewallEndpoint): FirewallEndpoint {
  return {
    id: e.id,
    networkId: e.networkId,
    hostIf: e.hostIf,
    address: e.address,
    ...(e.address6 !== undefined ? { address6: e.address6 } : {}),
    ...(e.siblings !== undefined ? { siblings: [...e.siblings] } : {}),
    exposures: e.exposures.map((x) => ({ ...x, ...(x.sources !== undefined ? { sources: [...x.sources] } : {}) })),
  };
}

function sameEndpoint(a: FirewallEndpoint, b: FirewallEndpoint): boolean {
  if (a.networkId !== b.networkId || a.hostIf !== b.hostIf || a.address !== b.address || a.address6 !== b.address6) return false;
  if (!sameList(a.siblings, b.siblings)) return false;
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
    (a.hostIp ?? '') === (b.hostIp ?? '') &&
    a.hostIface === b.hostIface &&
    sameList(a.sources, b.sources)
  );
}

function sameList(a: string[] | undefined, b: string[] | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
