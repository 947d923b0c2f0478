import type { Firewall, FirewallModel } from './model.js';
import { renderRuleset } from './nft/render.js';

/**
 * In-memory Firewall for driver tests. It renders every model it is given, so a model the real
 * firewall would refuse (bad interface name, conflicting exposures) fails here too.
 */
export class FakeFirewall implements Firewall {
  /** Every model applied, oldest first (deep copies: later mutation by the caller does not leak in). */
  readonly applied: FirewallModel[] = [];
  removeCalls = 0;
  /** The next apply/remove rejects with this error, once. */
  failNext: Error | undefined;

  /** The model the "kernel" holds now; undefined before the first apply and after remove(). */
  get model(): FirewallModel | undefined {
    return this.installed;
  }

  /** What `nft` would have been given for the current model. */
  get rendered(): string | undefined {
    return this.installed && renderRuleset(this.installed);
  }

  private installed: FirewallModel | undefined;

  async apply(model: FirewallModel): Promise<void> {
    this.throwIfFailing();
    const copy = structuredClone(model);
    renderRuleset(copy);
    this.applied.push(copy);
    this.installed = copy;
  }

  async remove(): Promise<void> {
    this.throwIfFailing();
    this.removeCalls++;
    this.installed = undefined;
  }

  private throwIfFailing(): void {
    const err = this.failNext;
    if (err) {
      this.failNext = undefined;
      throw err;
    }
  }
}
