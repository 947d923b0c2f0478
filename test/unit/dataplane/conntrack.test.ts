import { describe, expect, it } from 'vitest';
import { ConntrackCli, FakeConntrack, conntrackArgs, udpFlushTargets, type UdpFlushTarget } from '../../../src/dataplane/conntrack.js';
import { CommandError } from '../../../src/dataplane/exec.js';
import type { Element } from '../../../src/dataplane/nft/elements.js';

// The v6 and iface maps may not be in SetName yet everywhere; the element texts are what matters.
const el = (set: string, key: string, value?: string): Element =>
  ({ set, key, ...(value === undefined ? {} : { value }) }) as unknown as Element;

describe('udpFlushTargets', () => {
  it('reads every dnat map of both families, udp only', () => {
    const targets = udpFlushTargets([
      el('dnat_any', 'udp . 5353', '198.18.0.2 . 53'),
      el('dnat_any', 'tcp . 8080', '198.18.0.2 . 80'),
      el('dnat_bound', '198.51.100.1 . udp . 5000', '198.18.0.3 . 5000'),
      el('dnat_iface', '"eth0" . udp . 6000', '198.18.0.4 . 60'),
      el('dnat_any6', 'udp . 5353', '2001:db8::2 . 53'),
      el('dnat_bound6', '2001:db8::1 . udp . 7000', '2001:db8::3 . 70'),
      el('dnat_iface6', '"wlan0" . udp . 6001', '2001:db8::4 . 60'),
      el('dnat_iface6', '"wlan0" . sctp . 6002', '2001:db8::4 . 60'),
    ]);
    expect(targets).toEqual<UdpFlushTarget[]>([
      { family: 4, port: 5353 },
      { family: 4, port: 5000, hostIp: '198.51.100.1' },
      { family: 4, port: 6000 },
      { family: 6, port: 5353 },
      { family: 6, port: 7000, hostIp: '2001:db8::1' },
      { family: 6, port: 6001 },
    ]);
  });

  it('ignores the other sets, even with udp in their keys', () => {
    expect(
      udpFlushTargets([
        el('exposed_dnat', '198.18.0.2 . udp . 53'),
        el('exposed_direct6', '2001:db8::2 . udp . 53'),
        el('loopback_exposures', '127.0.0.1 . udp . 53'),
        el('pools6', '2001:db8::/64'),
        el('hairpin_self', '198.18.0.2 . 198.18.0.2'),
      ]),
    ).toEqual([]);
  });

  it('dedupes a delete and an add of the same host side (a replaced container)', () => {
    expect(
      udpFlushTargets([
        el('dnat_any', 'udp . 5353', '198.18.0.2 . 53'),
        el('dnat_any', 'udp . 5353', '198.18.0.9 . 53'),
        el('dnat_bound', '198.51.100.1 . udp . 5353', '198.18.0.9 . 53'),
        el('dnat_bound', '198.51.100.1 . udp . 5353', '198.18.0.2 . 53'),
      ]),
    ).toEqual([
      { family: 4, port: 5353 },
      { family: 4, port: 5353, hostIp: '198.51.100.1' },
    ]);
  });

  it('skips keys it cannot read rather than guessing', () => {
    expect(
      udpFlushTargets([
        el('dnat_any', 'udp . domain', '198.18.0.2 . 53'),
        el('dnat_any', 'udp', '198.18.0.2 . 53'),
        el('dnat_bound', 'udp . 53', '198.18.0.2 . 53'),
        el('dnat_any', 'udp . 0', '198.18.0.2 . 53'),
      ]),
    ).toEqual([]);
  });
});

describe('conntrackArgs', () => {
  it('builds argument arrays per family, with the host address when bound', () => {
    expect(conntrackArgs({ family: 4, port: 5353 })).toEqual(['-D', '-f', 'ipv4', '-p', 'udp', '--orig-port-dst', '5353']);
    expect(conntrackArgs({ family: 6, port: 7000, hostIp: '2001:db8::1' })).toEqual([
      '-D', '-f', 'ipv6', '-p', 'udp', '--orig-port-dst', '7000', '--orig-dst', '2001:db8::1',
    ]);
  });
});

type Call = { program: string; args: string[] };

function recorder(answer: (call: Call) => Promise<string>) {
  const calls: Call[] = [];
  const warnings: { obj: object; msg: string }[] = [];
  const run = (program: string, args: string[]) => {
    const call = { program, args };
    calls.push(call);
    return answer(call);
  };
  const logger = { warn: (obj: object, msg: string) => void warnings.push({ obj, msg }) };
  return { calls, warnings, run, logger };
}

const zeroDeleted = (c: Call) =>
  new CommandError(`${c.program} ${c.args.join(' ')}`, 1, 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n');

describe('ConntrackCli', () => {
  it('runs conntrack once per target, with argument arrays', async () => {
    const r = recorder(async () => '');
    const ct = new ConntrackCli({ run: r.run, logger: r.logger, conntrack: '/usr/sbin/conntrack' });
    await ct.flushUdp([{ family: 4, port: 5353 }, { family: 6, port: 53, hostIp: '2001:db8::1' }]);
    expect(r.calls).toEqual([
      { program: '/usr/sbin/conntrack', args: ['-D', '-f', 'ipv4', '-p', 'udp', '--orig-port-dst', '5353'] },
      { program: '/usr/sbin/conntrack', args: ['-D', '-f', 'ipv6', '-p', 'udp', '--orig-port-dst', '53', '--orig-dst', '2001:db8::1'] },
    ]);
    expect(r.warnings).toEqual([]);
  });

  it('does nothing for no targets', async () => {
    const r = recorder(async () => '');
    await new ConntrackCli({ run: r.run }).flushUdp([]);
    expect(r.calls).toEqual([]);
  });

  it('treats exit status 1 with "0 flow entries" as success', async () => {
    const r = recorder(async (c) => Promise.reject(zeroDeleted(c)));
    await new ConntrackCli({ run: r.run, logger: r.logger }).flushUdp([{ family: 4, port: 1 }, { family: 4, port: 2 }]);
    expect(r.calls).toHaveLength(2);
    expect(r.warnings).toEqual([]);
  });

  it('warns about other failures, carries on with the next target and never rejects', async () => {
    const r = recorder(async (c) =>
      c.args.includes('1')
        ? Promise.reject(new CommandError('conntrack', 1, 'conntrack v1.4.7 (conntrack-tools): Operation not permitted\n'))
        : '',
    );
    await expect(
      new ConntrackCli({ run: r.run, logger: r.logger }).flushUdp([{ family: 4, port: 1 }, { family: 4, port: 2 }]),
    ).resolves.toBeUndefined();
    expect(r.calls.map((c) => c.args[6])).toEqual(['1', '2']);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]!.msg).toContain('port 1');
    expect(JSON.stringify(r.warnings[0]!.obj)).toContain('Operation not permitted');
  });

  it('warns once when the binary is missing, then stops trying', async () => {
    const r = recorder(async (c) => Promise.reject(new CommandError(c.program, null, `spawn ${c.program} ENOENT`)));
    const ct = new ConntrackCli({ run: r.run, logger: r.logger });
    await ct.flushUdp([{ family: 4, port: 1 }, { family: 4, port: 2 }]);
    await ct.flushUdp([{ family: 6, port: 3 }]);
    expect(r.calls).toHaveLength(1);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]!.msg).toMatch(/conntrack not found/);
  });

  it('finds a really missing binary through the default runner', async () => {
    const r = recorder(async () => '');
    const ct = new ConntrackCli({ conntrack: '/nonexistent/conntrack', logger: r.logger });
    await expect(ct.flushUdp([{ family: 4, port: 5353 }])).resolves.toBeUndefined();
    expect(r.warnings).toHaveLength(1);
  });
});

describe('FakeConntrack', () => {
  it('records calls and can be made to fail', async () => {
    const f = new FakeConntrack();
    await f.flushUdp([{ family: 4, port: 1 }]);
    f.failWith = new Error('boom');
    await expect(f.flushUdp([{ family: 6, port: 2, hostIp: '2001:db8::1' }])).rejects.toThrow('boom');
    expect(f.calls).toEqual([[{ family: 4, port: 1 }], [{ family: 6, port: 2, hostIp: '2001:db8::1' }]]);
    expect(f.targets).toHaveLength(2);
  });
});
