import type { CommandRunner } from '../../../src/dataplane/dockerUser.js';
import { CommandError } from '../../../src/dataplane/exec.js';

/**
 * Just enough of iptables' filter table (-S, -N, -X, -F, -P, -A, -I, -D, -C) to test the DOCKER-USER
 * logic against behaviour rather than a script of expected commands. Rules are kept as the text
 * `iptables -S` prints after `-A CHAIN `.
 */
export class FakeIptables {
  private readonly builtins = ['INPUT', 'FORWARD', 'OUTPUT'];
  readonly chains = new Map<string, string[]>(this.builtins.map((c) => [c, []]));
  readonly policies = new Map(this.builtins.map((c) => [c, 'ACCEPT']));
  readonly calls: string[][] = [];
  /** Set to make every call fail as if the binary were missing. */
  missing = false;

  readonly run: CommandRunner = async (program, args) => {
    if (this.missing) throw new CommandError(program, null, 'spawn iptables ENOENT');
    this.calls.push(args);
    return this.exec(args);
  };

  /** Sets up what dockerd does on start: chain, RETURN at its end, jump moved to the top, DROP. */
  dockerdStarts(): void {
    this.exec(['-N', 'DOCKER-USER'], true);
    if (!this.rules('DOCKER-USER').includes('-j RETURN')) this.exec(['-A', 'DOCKER-USER', '-j', 'RETURN']);
    this.exec(['-D', 'FORWARD', '-j', 'DOCKER-USER'], true);
    this.exec(['-I', 'FORWARD', '-j', 'DOCKER-USER']);
    this.exec(['-P', 'FORWARD', 'DROP']);
  }

  rules(chain: string): string[] {
    return this.chains.get(chain) ?? [];
  }

  listing(): string {
    const lines: string[] = [];
    for (const c of this.builtins) lines.push(`-P ${c} ${this.policies.get(c)}`);
    for (const c of this.chains.keys()) if (!this.builtins.includes(c)) lines.push(`-N ${c}`);
    for (const [c, rules] of this.chains) for (const r of rules) lines.push(`-A ${c} ${r}`);
    return lines.join('\n') + '\n';
  }

  private exec(input: string[], ignoreErrors = false): string {
    const args = [...input];
    const strip = (flag: string, withValue: boolean) => {
      const i = args.indexOf(flag);
      if (i >= 0) args.splice(i, withValue ? 2 : 1);
    };
    strip('-w', true);
    strip('-t', true);
    const [op, chain, ...rest] = args;
    const fail = (msg: string): string => {
      if (ignoreErrors) return '';
      throw new CommandError(`iptables ${input.join(' ')}`, 1, msg);
    };
    if (op === '-S') return this.listing();
    if (chain === undefined) return fail('no chain');
    const rules = this.chains.get(chain);
    switch (op) {
      case '-N':
        if (rules) return fail('Chain already exists.');
        this.chains.set(chain, []);
        return '';
      case '-X':
        if (!rules) return fail('No chain/target/match by that name.');
        if (rules.length) return fail('Directory not empty.');
        for (const r of this.chains.values()) if (r.includes(`-j ${chain}`)) return fail('Too many links.');
        this.chains.delete(chain);
        return '';
      case '-P':
        this.policies.set(chain, rest[0] as string);
        return '';
    }
    if (!rules) return fail(`No chain/target/match by that name.`);
    if (op === '-F') {
      rules.length = 0;
      return '';
    }
    let spec = rest;
    let position = 1;
    if (op === '-I' && /^\d+$/.test(rest[0] ?? '')) {
      position = Number(rest[0]);
      spec = rest.slice(1);
    }
    const text = spec.join(' ');
    const target = /-j (\S+)/.exec(text)?.[1];
    if (target && !['ACCEPT', 'DROP', 'RETURN'].includes(target) && !this.chains.has(target)) {
      return fail(`Couldn't load target \`${target}'`);
    }
    const index = rules.indexOf(text);
    switch (op) {
      case '-A':
        rules.push(text);
        return '';
      case '-I':
        if (position > rules.length + 1) return fail('Index of insertion too big.');
        rules.splice(position - 1, 0, text);
        return '';
      case '-D':
        if (index < 0) return fail('Bad rule (does a matching rule exist in that chain?).');
        rules.splice(index, 1);
        return '';
      case '-C':
        return index < 0 ? fail('Bad rule (does a matching rule exist in that chain?).') : '';
    }
    return fail(`unsupported ${op}`);
  }
}
