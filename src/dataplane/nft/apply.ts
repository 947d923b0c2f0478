import { udpFlushTargets, type Conntrack, type WarnLogger } from '../conntrack.js';
import { ensureDockerUserRules, ensureDockerUserRules6, removeDockerUserRules, removeDockerUserRules6, type CommandRunner } from '../dockerUser.js';
import { CommandError, runCommand } from '../exec.js';
import type { Firewall, FirewallModel } from '../model.js';
import type { Element } from './elements.js';
import { TableContents } from './incremental.js';
import { planRuleset } from './plan.js';
import { renderDelta, renderPlan, renderRemoval } from './render.js';

export interface NftFirewallOptions {
  /** Runs `nft` and `iptables`; tests swap it to act inside a network namespace. */
  run?: CommandRunner;
  nft?: string;
  iptables?: string;
  /** nft table name (default `portnet`). */
  table?: string;
  /** Keep portnet's accepts in iptables DOCKER-USER (default true). */
  dockerUser?: boolean;
  /**
   * Apply changes as deltas of set and map elements (default true). false replaces the whole table
   * on every apply, as portnet did before; the benchmark compares the two.
   */
  incremental?: boolean;
  /**
   * Flushes stale UDP conntrack entries of host ports whose DNAT a change added or removed. Without
   * it, a client that keeps sending stays on the path its first packet took (see conntrack.ts).
   */
  conntrack?: Conntrack;
  /** Where a failed flush is reported (it never fails an apply). */
  logger?: WarnLogger;
}

/** What the last apply sent to nft (for tests and the benchmark). */
export interface ApplyReport {
  kind: 'replace' | 'delta' | 'none';
  /** Elements deleted and added by a delta. */
  deletes: number;
  adds: number;
}

/** nft refused a batch; carries its message and the line of our script it pointed at. */
export class NftError extends Error {
  override name = 'NftError';
  constructor(
    message: string,
    readonly stderr: string,
    readonly line?: number,
    readonly lineText?: string,
  ) {
    super(message);
  }
}

export class NftFirewall implements Firewall {
  private readonly run: CommandRunner;
  private readonly nft: string;
  private readonly table: string | undefined;
  private readonly dockerUser: { run: CommandRunner; iptables?: string } | undefined;
  private readonly incremental: boolean;
  private readonly conntrack: Conntrack | undefined;
  private readonly logger: WarnLogger | undefined;
  /** Calls are serialized: two transactions racing would leave whichever came last, not the newest model. */
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * What the table holds since the last transaction that succeeded; undefined before the first
   * apply, after remove(), and after any failure (the next apply then replaces the table whole).
   */
  private installed: TableContents | undefined;
  /** What the last apply sent to nft. */
  lastApply: ApplyReport = { kind: 'none', deletes: 0, adds: 0 };

  constructor(options: NftFirewallOptions = {}) {
    this.run = options.run ?? runCommand;
    this.nft = options.nft ?? 'nft';
    this.table = options.table;
    this.dockerUser =
      options.dockerUser === false
        ? undefined
        : { run: this.run, ...(options.iptables ? { iptables: options.iptables } : {}) };
    this.incremental = options.incremental ?? true;
    this.conntrack = options.conntrack;
    this.logger = options.logger;
  }

  /**
   * The first apply replaces portnet's table whole. Later ones compare the model with what the
   * table holds and send only the elements that changed, as one `nft -f` batch of `delete element`
   * and `add element` lines: still one transaction, and the chains never change. If that batch
   * fails (someone deleted or edited the table behind portnet's back), the table is replaced whole.
   */
  apply(model: FirewallModel): Promise<void> {
    return this.serialize(async () => {
      const installed = this.incremental ? this.installed : undefined;
      if (installed) {
        const transition = installed.transition(model);
        const { deletes, adds } = transition.delta;
        if (deletes.length + adds.length === 0) {
          transition.commit();
          this.lastApply = { kind: 'none', deletes: 0, adds: 0 };
        } else {
          try {
            await this.transaction(renderDelta(transition.delta, this.renderOptions()));
            transition.commit();
            this.lastApply = { kind: 'delta', deletes: deletes.length, adds: adds.length };
          } catch (err) {
            this.installed = undefined;
            if (!(err instanceof NftError)) throw err;
            await this.replace(model);
          }
          // Also after the fallback replace: the same DNAT elements changed, just not as a delta.
          await this.flushUdp([...deletes, ...adds]);
        }
      } else {
        await this.replace(model);
      }
      // After the table, so the accepts never exist without the filtering behind them.
      if (this.dockerUser) {
        await ensureDockerUserRules(this.dockerUser);
        // Only IPv6 traffic meets ip6tables' FORWARD: without a v6 pool there is nothing to let through.
        if (model.networks.some((n) => n.pools6.length > 0)) await ensureDockerUserRules6(this.dockerUser);
      }
    });
  }

  /**
   * Makes the next apply replace the table whole instead of sending a delta: for a caller that
   * suspects the table was changed behind portnet's back (a delta would not notice a deleted table
   * until the next change, and never an element someone added). Not part of the Firewall interface.
   */
  invalidate(): Promise<void> {
    return this.serialize(async () => {
      this.installed = undefined;
    });
  }

  /** Never throws: the firewall change is done, and stale UDP state is a nuisance, not a failure. */
  private async flushUdp(changed: Element[]): Promise<void> {
    if (!this.conntrack) return;
    try {
      const targets = udpFlushTargets(changed);
      if (targets.length > 0) await this.conntrack.flushUdp(targets);
    } catch (err) {
      this.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not flush stale UDP conntrack entries');
    }
  }

  /** One transaction that replaces the table whole with the ruleset of `model`. */
  private async replace(model: FirewallModel): Promise<void> {
    this.installed = undefined;
    const plan = planRuleset(model);
    await this.transaction(renderPlan(plan, this.renderOptions()));
    this.lastApply = { kind: 'replace', deletes: 0, adds: 0 };
    if (this.incremental) this.installed = TableContents.fromPlan(plan, model);
  }

  remove(): Promise<void> {
    return this.serialize(async () => {
      this.installed = undefined;
      try {
        if (this.dockerUser) {
          await removeDockerUserRules(this.dockerUser);
          await removeDockerUserRules6(this.dockerUser);
        }
      } finally {
        // The table goes even when an accept could not be taken out: an uninstall must not stop half-way.
        await this.transaction(renderRemoval(this.renderOptions()));
      }
    });
  }

  private renderOptions(): { table?: string } {
    return this.table === undefined ? {} : { table: this.table };
  }

  private async transaction(script: string): Promise<void> {
    try {
      await this.run(this.nft, ['-f', '-'], script);
    } catch (err) {
      throw err instanceof CommandError && err.code !== null ? nftError(script, err.stderr) : err;
    }
  }

  private serialize<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function nftError(script: string, stderr: string): NftError {
  const message = stderr.trim();
  // nft reports "/dev/stdin:LINE:COL-COL: Error: ..." for the first line it refused.
  const m = /\/dev\/stdin:(\d+):\d+(?:-\d+)?: (Error: .*)/.exec(message);
  if (!m) return new NftError(`nft rejected the ruleset: ${message}`, message);
  const line = Number(m[1]);
  const lineText = script.split('\n')[line - 1]?.trim() ?? '';
  return new NftError(`nft rejected line ${line} of the ruleset (${lineText}): ${m[2]}\n${message}`, message, line, lineText);
}
