import { CommandError, runCommand } from './exec.js';

/** Runs a program with an argument array; resolves with stdout, rejects with CommandError. */
export type CommandRunner = (program: string, args: string[], input?: string) => Promise<string>;

/**
 * Keeps Docker's FORWARD policy DROP from killing portnet traffic.
 *
 * Why here: a drop in any base chain is final, and Docker sets iptables' filter FORWARD policy to
 * DROP; an accept in portnet's own nft table cannot override that. DOCKER-USER is the one chain in
 * Docker's FORWARD that Docker evaluates first and never rewrites, so portnet's narrow accepts live
 * there, each tagged `-m comment --comment portnet`. The accepts do not open anything: traffic into
 * an endpoint is still filtered by portnet's nft table (its drops are final too).
 *
 * dockerd starting or restarting after portnet: Docker creates DOCKER-USER only if it is missing,
 * appends its `-j RETURN` only if missing (so it lands below portnet's rules), and deletes and
 * re-inserts the `FORWARD -j DOCKER-USER` jump at the top (so the jump portnet made is replaced, not
 * duplicated: portnet's jump is byte-for-byte Docker's, without a comment, for that reason). Docker
 * never flushes DOCKER-USER, but a firewall reload (firewalld, `iptables -F`, iptables-restore)
 * may: `ensureDockerUserRules` runs on every apply and costs one `iptables -S` when all is in place.
 */

export const PORTNET_COMMENT = 'portnet';
export const DOCKER_USER = 'DOCKER-USER';

const TAG = ['-m', 'comment', '--comment', PORTNET_COMMENT] as const;

/** portnet's rules, kept contiguous and in this order (written the way `iptables -S` prints them). */
export const DOCKER_USER_RULES: readonly (readonly string[])[] = [
  // Into an endpoint: portnet's nft table decides.
  ['-o', 'pn+', ...TAG, '-j', 'ACCEPT'],
  // Into Docker's own bridges a portnet container is an outsider: Docker's rules decide, as for the LAN.
  ['-i', 'pn+', '-o', 'docker+', ...TAG, '-j', 'RETURN'],
  ['-i', 'pn+', '-o', 'br-+', ...TAG, '-j', 'RETURN'],
  // Anything else a container sends (the internet, the LAN, other routed interfaces).
  ['-i', 'pn+', ...TAG, '-j', 'ACCEPT'],
];

const JUMP = ['FORWARD', '-j', DOCKER_USER] as const;

export interface DockerUserOptions {
  run?: CommandRunner;
  /** The iptables binary; Docker must use the same backend (iptables-nft here). */
  iptables?: string;
  /** The ip6tables binary, for ensureDockerUserRules6 / removeDockerUserRules6. */
  ip6tables?: string;
}

interface FilterState {
  chainExists: boolean;
  jumps: number;
  /** The rules of DOCKER-USER as `iptables -S` prints them, in order. */
  rules: string[];
}

/** Makes sure portnet's rules sit in DOCKER-USER; returns whether anything had to change. */
export async function ensureDockerUserRules(options: DockerUserOptions = {}): Promise<boolean> {
  const ipt = iptables(options);
  const state = await readState(ipt);
  const desired = DOCKER_USER_RULES.map(asListed);
  let changed = false;

  if (!state.chainExists) {
    await ipt(['-N', DOCKER_USER]);
    changed = true;
  }
  if (state.jumps === 0) {
    await ipt(['-I', ...JUMP]);
    changed = true;
  }
  if (inPlace(state.rules, desired)) return changed;

  for (const line of state.rules.filter(isPortnetRule)) await ipt(['-D', DOCKER_USER, ...ruleArgs(line)]);
  for (const [i, rule] of DOCKER_USER_RULES.entries()) await ipt(['-I', DOCKER_USER, String(i + 1), ...rule]);
  return true;
}

/**
 * Deletes portnet's rules. If that leaves DOCKER-USER empty, nobody else uses it (Docker always keeps
 * its RETURN there), so the chain and its jump, which portnet made, go too.
 */
export async function removeDockerUserRules(options: DockerUserOptions = {}): Promise<void> {
  const ipt = iptables(options);
  let state: FilterState;
  try {
    state = await readState(ipt);
  } catch (err) {
    // No iptables at all: portnet cannot have added anything.
    if (err instanceof CommandError && err.code === null) return;
    throw err;
  }
  if (!state.chainExists) return;
  const ours = state.rules.filter(isPortnetRule);
  for (const line of ours) await ipt(['-D', DOCKER_USER, ...ruleArgs(line)]);
  if (state.rules.length === ours.length) {
    for (let i = 0; i < state.jumps; i++) await ipt(['-D', ...JUMP]);
    await ipt(['-X', DOCKER_USER]);
  }
}

/**
 * The same accepts for IPv6, but only where Docker manages ip6tables (Engine 27+ by default, older
 * ones with `"ip6tables": true`): there Docker's DOCKER-USER chain exists and its FORWARD policy is
 * DROP. Where it does not exist nothing drops forwarded IPv6 for portnet, so portnet adds no chain of
 * its own. Runs on every apply, so a dockerd that starts managing ip6tables later is caught up with.
 */
export async function ensureDockerUserRules6(options: DockerUserOptions = {}): Promise<boolean> {
  const ipt6 = iptables(options, 6);
  let state: FilterState;
  try {
    state = await readState(ipt6);
  } catch (err) {
    // No ip6tables (or no IPv6 in the kernel): nothing of Docker's can drop IPv6 either.
    if (err instanceof CommandError) return false;
    throw err;
  }
  if (!state.chainExists) return false;
  return ensureDockerUserRules({ ...options, iptables: options.ip6tables ?? 'ip6tables' });
}

/**
 * removeDockerUserRules for ip6tables. An ip6tables that cannot work at all (a kernel booted with
 * ipv6.disable=1, a legacy backend without ip6_tables) cannot hold portnet's rules either, and must
 * not stop an uninstall half-way.
 */
export async function removeDockerUserRules6(options: DockerUserOptions = {}): Promise<void> {
  const ipt6 = iptables(options, 6);
  try {
    await readState(ipt6);
  } catch (err) {
    if (err instanceof CommandError) return;
    throw err;
  }
  return removeDockerUserRules({ ...options, iptables: options.ip6tables ?? 'ip6tables' });
}

function iptables(options: DockerUserOptions, family: 4 | 6 = 4): (args: string[]) => Promise<string> {
  const run = options.run ?? runCommand;
  const bin = family === 6 ? (options.ip6tables ?? 'ip6tables') : (options.iptables ?? 'iptables');
  // -w: wait for the xtables lock instead of failing while dockerd holds it.
  return (args) => run(bin, ['-w', '5', ...args]);
}

async function readState(ipt: (args: string[]) => Promise<string>): Promise<FilterState> {
  const lines = (await ipt(['-t', 'filter', '-S'])).split('\n').map((l) => l.trim());
  return {
    chainExists: lines.includes(`-N ${DOCKER_USER}`),
    jumps: lines.filter((l) => l === `-A ${JUMP.join(' ')}`).length,
    rules: lines.filter((l) => l.startsWith(`-A ${DOCKER_USER} `)),
  };
}

function asListed(rule: readonly string[]): string {
  return `-A ${DOCKER_USER} ${rule.join(' ')}`;
}

/**
 * portnet's rules are in place when they appear contiguously, in order, and no unconditional RETURN
 * comes before them. Rules an operator put above them stay there: portnet only moves its own.
 */
function inPlace(rules: string[], desired: string[]): boolean {
  const first = rules.findIndex(isPortnetRule);
  if (first < 0) return false;
  if (rules.slice(0, first).includes(`-A ${DOCKER_USER} -j RETURN`)) return false;
  if (rules.filter(isPortnetRule).length !== desired.length) return false;
  return desired.every((d, i) => rules[first + i] === d);
}

export function isPortnetRule(line: string): boolean {
  return new RegExp(`(^| )--comment "?${PORTNET_COMMENT}"?( |$)`).test(line);
}

/** The arguments of an `iptables -S` line after `-A CHAIN`, with its double quotes undone. */
export function ruleArgs(line: string): string[] {
  const args: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    args.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] as string));
  }
  return args.slice(2);
}
