import type { CommandRunner } from './dockerUser.js';
import { CommandError, runCommand } from './exec.js';
import type { Element } from './nft/elements.js';

/**
 * Flushing stale UDP conntrack entries when a UDP DNAT changes.
 *
 * NAT is decided on a flow's first packet and then reused for every packet conntrack matches to
 * that entry. UDP has no connection end, so a client that keeps sending (DNS, syslog, game servers,
 * VoIP) keeps its entry alive forever: an entry created before the DNAT existed (the packets went to
 * the host, or were dropped) or one that points at a container since replaced keeps steering the
 * client to the wrong place, however the map now reads. TCP does not need this: a new connection
 * is a new flow, and the old one dies with its container.
 *
 * So after a transaction that adds or removes a UDP DNAT element, the entries whose original
 * destination port is that host port are deleted, as kube-proxy does for UDP services
 * (`conntrack -D -p udp --orig-port-dst PORT`); the client's next packet is a new flow and meets
 * the current map. By port, not by the old container's address: an entry made before the DNAT
 * existed names no container at all. Deleting a few unrelated UDP entries to the same port (say the
 * host's own queries to a remote port 53) is harmless: the next packet re-creates them.
 */

export interface UdpFlushTarget {
  family: 4 | 6;
  port: number;
  /** Only for exposures bound to one host address; otherwise every destination address matches. */
  hostIp?: string;
}

export interface Conntrack {
  flushUdp(targets: readonly UdpFlushTarget[]): Promise<void>;
}

/** Maps whose keys are the host side of a DNAT, with the field that holds the protocol. */
const DNAT_MAPS: Record<string, { protoAt: number; hostIpAt?: number }> = {
  dnat_any: { protoAt: 0 },
  dnat_bound: { protoAt: 1, hostIpAt: 0 },
  // Interface bindings follow whatever addresses the interface has: flush by port only.
  dnat_iface: { protoAt: 1 },
};

/** From the elements of a delta: every dnat_* / dnat_*6 map element whose key has proto udp. */
export function udpFlushTargets(elements: readonly Element[]): UdpFlushTarget[] {
  const out = new Map<string, UdpFlushTarget>();
  for (const e of elements) {
    // Compared as text so the v6 maps (added to SetName elsewhere) need no change here.
    const set: string = e.set;
    const v6 = set.endsWith('6');
    const spec = DNAT_MAPS[v6 ? set.slice(0, -1) : set];
    if (!spec) continue;
    const fields = e.key.split(' . ').map((f) => f.trim());
    if (fields.length !== spec.protoAt + 2 || fields[spec.protoAt] !== 'udp') continue;
    const target: UdpFlushTarget = { family: v6 ? 6 : 4, port: 0 };
    if (spec.hostIpAt !== undefined) target.hostIp = fields[spec.hostIpAt];
    for (const port of ports(fields[spec.protoAt + 1]!)) {
      const t = { ...target, port };
      out.set(`${t.family} ${t.port} ${t.hostIp ?? ''}`, t);
    }
  }
  return [...out.values()];
}

/** Keys name one port; a range (if one ever appears) is flushed port by port, since conntrack takes one. */
function ports(text: string): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) return [];
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first < 1 || last > 65535 || last < first) return [];
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

/** The conntrack arguments that delete the UDP entries of one target. */
export function conntrackArgs(t: UdpFlushTarget): string[] {
  const args = ['-D', '-f', t.family === 6 ? 'ipv6' : 'ipv4', '-p', 'udp', '--orig-port-dst', String(t.port)];
  if (t.hostIp !== undefined) args.push('--orig-dst', t.hostIp);
  return args;
}

/** The one logger call this module makes (a pino Logger fits). */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

export interface ConntrackCliOptions {
  /** Runs conntrack; tests swap it to act inside a network namespace. */
  run?: CommandRunner;
  conntrack?: string;
  logger?: WarnLogger;
}

/**
 * Deletes the entries with conntrack-tools. Never rejects: the firewall change it follows has
 * already happened, and a request must not fail because stale state could not be cleaned; the
 * worst case is the old behaviour (a continuous UDP client keeps its old path until it pauses
 * for the conntrack UDP timeout).
 */
export class ConntrackCli implements Conntrack {
  private readonly run: CommandRunner;
  private readonly program: string;
  private readonly logger: WarnLogger | undefined;
  /** Set once the binary turned out to be missing: warn once, then stop trying. */
  private missing = false;

  constructor(options: ConntrackCliOptions = {}) {
    this.run = options.run ?? runCommand;
    this.program = options.conntrack ?? 'conntrack';
    this.logger = options.logger;
  }

  async flushUdp(targets: readonly UdpFlushTarget[]): Promise<void> {
    for (const t of targets) {
      if (this.missing) return;
      const args = conntrackArgs(t);
      try {
        await this.run(this.program, args);
      } catch (err) {
        if (nothingToDelete(err)) continue;
        if (isMissingBinary(err)) {
          this.missing = true;
          this.logger?.warn(
            { program: this.program },
            `${this.program} not found: stale UDP conntrack entries are not flushed when UDP exposures change (install conntrack-tools)`,
          );
          return;
        }
        this.logger?.warn(
          { err: err instanceof Error ? err.message : String(err), args },
          `could not flush UDP conntrack entries for ${t.hostIp ?? (t.family === 6 ? '[::]' : '0.0.0.0')} port ${t.port}`,
        );
      }
    }
  }
}

/** conntrack -D exits 1 when it matched nothing; that is the usual case, not a failure. */
function nothingToDelete(err: unknown): boolean {
  return err instanceof CommandError && err.code === 1 && /\b0 flow entries\b/.test(err.stderr);
}

/** spawn fails before the program runs (exit code null) with ENOENT when it is not installed. */
function isMissingBinary(err: unknown): boolean {
  return err instanceof CommandError && err.code === null && /ENOENT/.test(err.stderr);
}

/** Records calls instead of touching the kernel (for unit tests of the firewall). */
export class FakeConntrack implements Conntrack {
  readonly calls: UdpFlushTarget[][] = [];
  /** Make flushUdp reject, to test that callers never let it fail a request. */
  failWith: Error | undefined;

  async flushUdp(targets: readonly UdpFlushTarget[]): Promise<void> {
    this.calls.push(targets.map((t) => ({ ...t })));
    if (this.failWith) throw this.failWith;
  }

  /** Every target of every call, in order. */
  get targets(): UdpFlushTarget[] {
    return this.calls.flat();
  }
}
