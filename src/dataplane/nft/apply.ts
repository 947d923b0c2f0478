import { ensureDockerUserRules, removeDockerUserRules, type CommandRunner } from '../dockerUser.js';
import { CommandError, runCommand } from '../exec.js';
import type { Firewall, FirewallModel } from '../model.js';
import { renderRemoval, renderRuleset } from './render.js';

export interface NftFirewallOptions {
  /** Runs `nft` and `iptables`; tests swap it to act inside a network namespace. */
  run?: CommandRunner;
  nft?: string;
  iptables?: string;
  /** nft table name (default `portnet`). */
  table?: string;
  /** Keep portnet's accepts in iptables DOCKER-USER (default true). */
  dockerUser?: boolean;
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
  /** Calls are serialized: two transactions racing would leave whichever came last, not the newest model. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: NftFirewallOptions = {}) {
    this.run = options.run ?? runCommand;
    this.nft = options.nft ?? 'nft';
    this.table = options.table;
    this.dockerUser =
      options.dockerUser === false
        ? undefined
        : { run: this.run, ...(options.iptables ? { iptables: options.iptables } : {}) };
  }

  apply(model: FirewallModel): Promise<void> {
    return this.serialize(async () => {
      await this.transaction(renderRuleset(model, this.renderOptions()));
      // After the table, so the accepts never exist without the filtering behind them.
      if (this.dockerUser) await ensureDockerUserRules(this.dockerUser);
    });
  }

  remove(): Promise<void> {
    return this.serialize(async () => {
      if (this.dockerUser) await removeDockerUserRules(this.dockerUser);
      await this.transaction(renderRemoval(this.renderOptions()));
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
