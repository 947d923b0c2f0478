import { describe, expect, it } from 'vitest';
import { FakeConntrack } from '../../../src/dataplane/conntrack.js';
import type { CommandRunner } from '../../../src/dataplane/dockerUser.js';
import { CommandError } from '../../../src/dataplane/exec.js';
import { FakeFirewall } from '../../../src/dataplane/fakeFirewall.js';
import { NftError, NftFirewall } from '../../../src/dataplane/nft/apply.js';
import { renderRuleset } from '../../../src/dataplane/nft/render.js';
import { FirewallModelError } from '../../../src/dataplane/nft/syntax.js';
import { FakeIptables } from './fakeIptables.js';
import { GOLDEN_MODELS, endpoint, network, tcp, udp } from './fixtures.js';

interface Call {
  program: string;
  args: string[];
  input: string | undefined;
}

/** nft answers from `nftAnswer`; iptables goes to a FakeIptables. */
function fakeSystem(nftAnswer: (input: string) => Promise<string> = async () => '') {
  const calls: Call[] = [];
  const iptables = new FakeIptables();
  const run: CommandRunner = async (program, args, input) => {
    calls.push({ program, args, input });
    return program === 'nft' ? nftAnswer(input ?? '') : iptables.run(program, args, input);
  };
  return { calls, iptables, run };
}

const MODEL = GOLDEN_MODELS['two-networks']!;

describe('NftFirewall', () => {
  it('feeds the rendered batch to `nft -f -` on stdin, then asserts DOCKER-USER', async () => {
    const sys = fakeSystem();
    await new NftFirewall({ run: sys.run }).apply(MODEL);
    expect(sys.calls[0]).toEqual({ program: 'nft', args: ['-f', '-'], input: renderRuleset(MODEL) });
    expect(sys.calls.slice(1).every((c) => c.program === 'iptables')).toBe(true);
    expect(sys.iptables.rules('DOCKER-USER').length).toBeGreaterThan(0);
  });

  it('asserts the ip6tables DOCKER-USER accepts only while a network has an IPv6 pool', async () => {
    const sys = fakeSystem();
    await new NftFirewall({ run: sys.run }).apply(MODEL);
    expect(sys.calls.some((c) => c.program === 'ip6tables')).toBe(false);
    const dual = GOLDEN_MODELS['dual-stack']!;
    expect(dual.networks.some((n) => n.pools6.length > 0)).toBe(true);
    const sys6 = fakeSystem();
    await new NftFirewall({ run: sys6.run }).apply(dual);
    expect(sys6.calls.filter((c) => c.program === 'ip6tables').map((c) => c.args.slice(2))).toContainEqual(['-t', 'filter', '-S']);
  });

  it("reports nft's message with the line of the ruleset it refused, and skips iptables", async () => {
    const stderr = '/dev/stdin:31:3-9: Error: Could not process rule: No such file or directory\n\tcomment "x"\n\t^^^^^^^\n';
    const sys = fakeSystem(async () => {
      throw new CommandError('nft -f -', 1, stderr);
    });
    const error = await new NftFirewall({ run: sys.run }).apply(MODEL).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NftError);
    const e = error as NftError;
    expect(e.line).toBe(31);
    expect(e.lineText).toBe(renderRuleset(MODEL).split('\n')[30]!.trim());
    expect(e.message).toContain('nft rejected line 31 of the ruleset');
    expect(e.message).toContain('No such file or directory');
    expect(sys.calls.map((c) => c.program)).toEqual(['nft']);
  });

  it('passes on failures that are not nft refusing the batch (e.g. nft missing)', async () => {
    const missing = new CommandError('nft -f -', null, 'spawn nft ENOENT');
    const sys = fakeSystem(async () => {
      throw missing;
    });
    await expect(new NftFirewall({ run: sys.run }).apply(MODEL)).rejects.toBe(missing);
  });

  it('refuses an invalid model before running anything', async () => {
    const sys = fakeSystem();
    const bad = { networks: [network(1)], endpoints: [{ ...endpoint(network(1), 1), hostIf: 'x' }] };
    await expect(new NftFirewall({ run: sys.run }).apply(bad)).rejects.toBeInstanceOf(FirewallModelError);
    expect(sys.calls).toEqual([]);
  });

  it('leaves iptables alone with dockerUser: false', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    await fw.apply(MODEL);
    await fw.remove();
    expect(sys.calls.map((c) => c.program)).toEqual(['nft', 'nft']);
  });

  it('runs one transaction at a time, in call order, even when one fails', async () => {
    const order: string[] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const sys = fakeSystem(async (input) => {
      const tag = input.includes('8080') ? 'big' : 'empty';
      order.push(`start ${tag}`);
      if (tag === 'big') await gate;
      order.push(`end ${tag}`);
      if (tag === 'big') throw new CommandError('nft -f -', 1, 'Error: boom');
      return '';
    });
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    const first = fw.apply(MODEL).catch(() => 'failed');
    const second = fw.apply(GOLDEN_MODELS.empty!);
    await Promise.resolve();
    release();
    expect(await first).toBe('failed');
    await second;
    expect(order).toEqual(['start big', 'end big', 'start empty', 'end empty']);
  });

  it('remove() takes out the DOCKER-USER rules and deletes the table with a safe add+delete batch', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run, table: 'portnet_t' });
    await fw.apply(MODEL);
    sys.calls.length = 0;
    await fw.remove();
    expect(sys.calls.at(-1)).toEqual({
      program: 'nft',
      args: ['-f', '-'],
      input: 'add table inet portnet_t\ndelete table inet portnet_t\n',
    });
    expect(sys.iptables.chains.has('DOCKER-USER')).toBe(false);
  });
});

describe('NftFirewall, incremental', () => {
  const net = network(1);
  const base = { networks: [net], endpoints: [endpoint(net, 1, [tcp(8080, 80)])] };
  const grown = { networks: [net], endpoints: [...base.endpoints, endpoint(net, 2, [tcp(8081, 81)])] };
  const nftInputs = (calls: Call[]) => calls.filter((c) => c.program === 'nft').map((c) => c.input ?? '');

  it('replaces the table on the first apply, then sends only the elements that changed', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run });
    await fw.apply(base);
    expect(fw.lastApply.kind).toBe('replace');
    await fw.apply(grown);
    expect(fw.lastApply).toEqual({ kind: 'delta', deletes: 0, adds: 5 });
    await fw.apply(base);
    expect(fw.lastApply).toEqual({ kind: 'delta', deletes: 5, adds: 0 });
    const [, add, del] = nftInputs(sys.calls);
    expect(add!.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'add element inet portnet endpoint_sources { "pn12c0ffee000" . 198.18.1.3 }',
      'add element inet portnet exposed_direct { 198.18.1.3 . tcp . 81 }',
      'add element inet portnet exposed_dnat { 198.18.1.3 . tcp . 81 }',
      'add element inet portnet hairpin_self { 198.18.1.3 . 198.18.1.3 }',
      'add element inet portnet dnat_any { tcp . 8081 : 198.18.1.3 . 81 }',
    ]);
    // Map elements are deleted by key.
    expect(del).toContain('delete element inet portnet dnat_any { tcp . 8081 }');
    expect(del).not.toContain('add element');
    // DOCKER-USER is still checked after every apply.
    expect(sys.calls.filter((c) => c.program === 'iptables' && c.args.includes('-S'))).toHaveLength(3);
  });

  it('sends nothing to nft when nothing changed', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    await fw.apply(base);
    await fw.apply(structuredClone(base));
    expect(fw.lastApply.kind).toBe('none');
    expect(nftInputs(sys.calls)).toHaveLength(1);
  });

  it('replaces the table whole in the same apply when a delta is refused (table changed behind its back)', async () => {
    let refuse = false;
    const sys = fakeSystem(async (input) => {
      if (refuse && input.startsWith('# portnet firewall change')) throw new CommandError('nft -f -', 1, '/dev/stdin:2:1-10: Error: No such file or directory');
      return '';
    });
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    await fw.apply(base);
    refuse = true;
    await fw.apply(grown);
    expect(fw.lastApply.kind).toBe('replace');
    const inputs = nftInputs(sys.calls);
    expect(inputs).toHaveLength(3);
    expect(inputs[2]).toBe(renderRuleset(grown));
  });

  it('after a failed apply, the next one replaces the table whole', async () => {
    let fail = false;
    const sys = fakeSystem(async () => {
      if (fail) throw new CommandError('nft -f -', 1, 'Error: boom');
      return '';
    });
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    await fw.apply(base);
    fail = true;
    await expect(fw.apply(grown)).rejects.toBeInstanceOf(NftError);
    fail = false;
    await fw.apply(grown);
    expect(fw.lastApply.kind).toBe('replace');
    expect(nftInputs(sys.calls).at(-1)).toBe(renderRuleset(grown));
  });

  it('an invalid model changes nothing and sends nothing; the next valid one is still a delta', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    await fw.apply(base);
    const clash = { networks: [net], endpoints: [...base.endpoints, endpoint(net, 2, [tcp(8080, 81)])] };
    await expect(fw.apply(clash)).rejects.toThrow(/host port 8080\/tcp is exposed by both/);
    await fw.apply(grown);
    expect(fw.lastApply.kind).toBe('delta');
    expect(nftInputs(sys.calls)).toHaveLength(2);
  });

  it('with incremental: false, replaces the table on every apply', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false, incremental: false });
    await fw.apply(base);
    await fw.apply(grown);
    await fw.apply(grown);
    expect(nftInputs(sys.calls)).toEqual([renderRuleset(base), renderRuleset(grown), renderRuleset(grown)]);
  });

  it('invalidate() makes the next apply a full replace, even of an unchanged model', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    await fw.apply(base);
    await fw.invalidate();
    await fw.apply(base);
    expect(fw.lastApply.kind).toBe('replace');
    expect(nftInputs(sys.calls)).toEqual([renderRuleset(base), renderRuleset(base)]);
  });

  it('remove() forgets the table: the next apply replaces it whole', async () => {
    const sys = fakeSystem();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false });
    await fw.apply(base);
    await fw.remove();
    await fw.apply(base);
    expect(fw.lastApply.kind).toBe('replace');
  });
});

describe('NftFirewall and UDP conntrack', () => {
  const net = network(1);
  const tcpOnly = { networks: [net], endpoints: [endpoint(net, 1, [tcp(8080, 80)])] };
  const withUdp = { networks: [net], endpoints: [endpoint(net, 1, [tcp(8080, 80), udp(5353, 53), udp(5454, 54, '198.51.100.1')])] };

  it('flushes the UDP host ports a delta added or removed, after the transaction', async () => {
    const order: string[] = [];
    const sys = fakeSystem(async () => {
      order.push('nft');
      return '';
    });
    const conntrack = new FakeConntrack();
    const flush = conntrack.flushUdp.bind(conntrack);
    conntrack.flushUdp = async (targets) => {
      order.push('flush');
      return flush(targets);
    };
    const fw = new NftFirewall({ run: sys.run, dockerUser: false, conntrack });
    await fw.apply(tcpOnly);
    expect(conntrack.calls).toEqual([]);
    await fw.apply(withUdp);
    expect(conntrack.calls).toEqual([[{ family: 4, port: 5353 }, { family: 4, port: 5454, hostIp: '198.51.100.1' }]]);
    await fw.apply(tcpOnly);
    expect(conntrack.calls[1]).toEqual([{ family: 4, port: 5353 }, { family: 4, port: 5454, hostIp: '198.51.100.1' }]);
    expect(order).toEqual(['nft', 'nft', 'flush', 'nft', 'flush']);
    // A TCP-only change flushes nothing.
    await fw.apply({ networks: [net], endpoints: [endpoint(net, 1, [tcp(8081, 80)])] });
    expect(conntrack.calls).toHaveLength(2);
  });

  it('a failing flush is logged, never thrown', async () => {
    const sys = fakeSystem();
    const conntrack = new FakeConntrack();
    conntrack.failWith = new Error('netlink says no');
    const warnings: string[] = [];
    const logger = { warn: (obj: object, msg: string) => warnings.push(`${msg} ${JSON.stringify(obj)}`) };
    const fw = new NftFirewall({ run: sys.run, dockerUser: false, conntrack, logger });
    await fw.apply(tcpOnly);
    await expect(fw.apply(withUdp)).resolves.toBeUndefined();
    expect(fw.lastApply.kind).toBe('delta');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('netlink says no');
  });

  it('also flushes when a refused delta fell back to replacing the table', async () => {
    let refuse = false;
    const sys = fakeSystem(async (input) => {
      if (refuse && input.startsWith('# portnet firewall change')) throw new CommandError('nft -f -', 1, '/dev/stdin:2:1-10: Error: No such file or directory');
      return '';
    });
    const conntrack = new FakeConntrack();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false, conntrack });
    await fw.apply(tcpOnly);
    refuse = true;
    await fw.apply(withUdp);
    expect(fw.lastApply.kind).toBe('replace');
    expect(conntrack.targets.map((t) => t.port)).toEqual([5353, 5454]);
  });

  it('does not flush when the transaction failed', async () => {
    let fail = false;
    const sys = fakeSystem(async () => {
      if (fail) throw new CommandError('nft -f -', 1, 'Error: boom');
      return '';
    });
    const conntrack = new FakeConntrack();
    const fw = new NftFirewall({ run: sys.run, dockerUser: false, conntrack });
    await fw.apply(tcpOnly);
    fail = true;
    await expect(fw.apply(withUdp)).rejects.toBeInstanceOf(NftError);
    expect(conntrack.calls).toEqual([]);
  });
});

describe('FakeFirewall', () => {
  it('records a copy of each model and exposes the current one as `model`', async () => {
    const fw = new FakeFirewall();
    const m = structuredClone(GOLDEN_MODELS['one-endpoint']!);
    await fw.apply(m);
    m.endpoints[0]!.exposures.push(tcp(80));
    expect(fw.model).toEqual(GOLDEN_MODELS['one-endpoint']);
    expect(fw.rendered).toBe(renderRuleset(GOLDEN_MODELS['one-endpoint']!));
    await fw.remove();
    expect(fw.model).toBeUndefined();
    expect(fw.applied).toHaveLength(1);
    expect(fw.removeCalls).toBe(1);
  });

  it('rejects what the real firewall would reject, and can be told to fail once', async () => {
    const fw = new FakeFirewall();
    const n = network(1);
    await expect(fw.apply({ networks: [n], endpoints: [{ ...endpoint(n, 1), address: '10.0.0.1' }] })).rejects.toThrow(
      FirewallModelError,
    );
    fw.failNext = new Error('kernel says no');
    await expect(fw.apply(GOLDEN_MODELS.empty!)).rejects.toThrow('kernel says no');
    await fw.apply(GOLDEN_MODELS.empty!);
    expect(fw.applied).toHaveLength(1);
  });
});
