import { expect } from 'vitest';
import type { ProbeResult, World } from './world.js';

/** Asserts who answered, whom it saw as the client, and on which container port. */
export function answered(r: ProbeResult, label: string, peer?: string, port?: number): void {
  expect(r.result, JSON.stringify(r)).toBe('ok');
  const [l, p, lp] = (r.reply ?? '').split(' ');
  expect(l).toBe(label);
  if (peer !== undefined) expect(p).toBe(peer);
  if (port !== undefined) expect(Number(lp)).toBe(port);
}

/** No answer at all: the firewall dropped it. */
export const dropped = (r: ProbeResult) => expect(r.result, JSON.stringify(r)).toBe('timeout');

/** Reached the host itself (no DNAT happened) and found nothing listening there. */
export const refusedByHost = (r: ProbeResult) => expect(r.result, JSON.stringify(r)).toBe('refused');

/** Packets counted by the rule of `chain` whose expression mentions `needle`, in the world's host. */
export async function ruleCounter(world: World, chain: string, needle: string): Promise<number> {
  const json = JSON.parse(await world.exec('host', 'nft', ['-j', 'list', 'chain', 'inet', 'portnet', chain])) as {
    nftables: { rule?: { expr: unknown[] } }[];
  };
  const rule = json.nftables.find((e) => e.rule && JSON.stringify(e.rule.expr).includes(needle))?.rule;
  const c = rule?.expr.find((x): x is { counter: { packets: number } } => typeof x === 'object' && x !== null && 'counter' in x);
  if (!c) throw new Error(`no counter on the rule matching ${needle} in ${chain}`);
  return c.counter.packets;
}
