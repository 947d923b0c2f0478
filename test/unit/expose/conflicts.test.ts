import { describe, expect, it } from 'vitest';
import { exposureKey, findConflict, overlap, sameExposure, type Claim } from '../../../src/expose/conflicts.js';
import type { Exposure } from '../../../src/expose/types.js';

function ex(p: Partial<Exposure> & { hostPort: number }): Exposure {
  return { hostPortEnd: p.hostPort, containerPort: 80, containerPortEnd: 80, proto: 'tcp', origin: 'publish', ...p };
}

const WEB1 = '3f2a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8';
const NEW = 'c749b172b5f26a1cb32b98ae7273413b811662c325ea96702938c9265f300396';

function held(exposure: Exposure, label = 'container web1', endpointId = WEB1): Claim {
  return { endpointId, label, exposure };
}

describe('findConflict against existing claims', () => {
  const by = 'by endpoint 3f2a1b2c3d4e (container web1)';
  it.each<[string, Exposure, Exposure, string | undefined]>([
    ['same port, all addresses', ex({ hostPort: 8080 }), ex({ hostPort: 8080, containerPort: 81, containerPortEnd: 81 }),
      `host port 8080/tcp on all addresses is already published ${by}`],
    ['same port on 0.0.0.0', ex({ hostIp: '0.0.0.0', hostPort: 8080 }), ex({ hostIp: '0.0.0.0', hostPort: 8080 }),
      `host port 8080/tcp on 0.0.0.0 is already published ${by}`],
    ['all addresses held, one asked', ex({ hostPort: 8080 }), ex({ hostIp: '127.0.0.1', hostPort: 8080 }),
      `host port 8080/tcp on 127.0.0.1 is already published on all addresses ${by}`],
    ['0.0.0.0 held, one IPv4 asked', ex({ hostIp: '0.0.0.0', hostPort: 8080 }), ex({ hostIp: '127.0.0.1', hostPort: 8080 }),
      `host port 8080/tcp on 127.0.0.1 is already published on 0.0.0.0 ${by}`],
    ['one IPv4 held, 0.0.0.0 asked', ex({ hostIp: '127.0.0.1', hostPort: 8080 }), ex({ hostIp: '0.0.0.0', hostPort: 8080 }),
      `host port 8080/tcp on 127.0.0.1 is already published ${by}`],
    ['0.0.0.0 held, all addresses asked', ex({ hostIp: '0.0.0.0', hostPort: 8080 }), ex({ hostPort: 8080 }),
      `host port 8080/tcp on 0.0.0.0 is already published ${by}`],
    ['all addresses held, ::1 asked', ex({ hostPort: 8080 }), ex({ hostIp: '::1', hostPort: 8080 }),
      `host port 8080/tcp on [::1] is already published on all addresses ${by}`],
    [':: held, ::1 asked', ex({ hostIp: '::', hostPort: 8080 }), ex({ hostIp: '::1', hostPort: 8080 }),
      `host port 8080/tcp on [::1] is already published on [::] ${by}`],
    ['range overlap', ex({ hostPort: 8000, hostPortEnd: 8010, containerPort: 9000, containerPortEnd: 9010 }),
      ex({ hostPort: 8005, hostPortEnd: 8020, containerPort: 9005, containerPortEnd: 9020 }),
      `host port 8005/tcp on all addresses is already published ${by}`],
    ['range touching at one end', ex({ hostPort: 8000, hostPortEnd: 8010, containerPort: 9000, containerPortEnd: 9010 }),
      ex({ hostPort: 7990, hostPortEnd: 8000, containerPort: 7990, containerPortEnd: 8000 }),
      `host port 8000/tcp on all addresses is already published ${by}`],
    ['udp', ex({ hostPort: 53, proto: 'udp' }), ex({ hostPort: 53, proto: 'udp' }),
      `host port 53/udp on all addresses is already published ${by}`],
    // No clash:
    ['adjacent ranges', ex({ hostPort: 8000, hostPortEnd: 8010, containerPort: 9000, containerPortEnd: 9010 }),
      ex({ hostPort: 8011, hostPortEnd: 8020, containerPort: 9011, containerPortEnd: 9020 }), undefined],
    ['different protocol', ex({ hostPort: 8080 }), ex({ hostPort: 8080, proto: 'udp' }), undefined],
    ['sctp vs tcp', ex({ hostPort: 8080, proto: 'sctp' }), ex({ hostPort: 8080 }), undefined],
    ['IPv4-wide vs IPv6-wide', ex({ hostIp: '0.0.0.0', hostPort: 8080 }), ex({ hostIp: '::', hostPort: 8080 }), undefined],
    ['IPv4-wide vs one IPv6', ex({ hostIp: '0.0.0.0', hostPort: 8080 }), ex({ hostIp: '::1', hostPort: 8080 }), undefined],
    ['IPv6-wide vs one IPv4', ex({ hostIp: '::', hostPort: 8080 }), ex({ hostIp: '127.0.0.1', hostPort: 8080 }), undefined],
    ['two different IPv4 addresses', ex({ hostIp: '127.0.0.1', hostPort: 8080 }), ex({ hostIp: '127.0.0.2', hostPort: 8080 }), undefined],
    ['other port', ex({ hostPort: 8080 }), ex({ hostPort: 8081 }), undefined],
    // Unresolved host ports claim nothing yet.
    ['ephemeral held', ex({ hostPort: 0, hostPortEnd: 0 }), ex({ hostPort: 8080 }), undefined],
    ['ephemeral asked', ex({ hostPort: 8080 }), ex({ hostPort: 0, hostPortEnd: 0 }), undefined],
    ['range-pick asked', ex({ hostPort: 8005 }), ex({ hostPort: 8000, hostPortEnd: 8010 }), undefined],
  ])('%s', (_, existing, incoming, message) => {
    expect(findConflict([held(existing)], NEW, [incoming])?.message).toBe(message);
  });

  it('reports the clash as data: exposure, holder, first port, shared address', () => {
    const holder = held(ex({ hostIp: '0.0.0.0', hostPort: 8000, hostPortEnd: 8010, containerPort: 8000, containerPortEnd: 8010 }));
    const wanted = ex({ hostIp: '10.0.0.1', hostPort: 8008, hostPortEnd: 8012, containerPort: 8008, containerPortEnd: 8012, origin: 'option' });
    expect(findConflict([holder], NEW, [wanted])).toEqual({
      port: 8008,
      proto: 'tcp',
      hostIp: '10.0.0.1',
      exposure: wanted,
      holder: { claim: holder },
      message: 'host port 8008/tcp on 10.0.0.1 is already published on 0.0.0.0 by endpoint 3f2a1b2c3d4e (container web1)',
    });
  });

  it('leaves the label out when there is none', () => {
    const conflict = findConflict([held(ex({ hostPort: 8080 }), '')], NEW, [ex({ hostPort: 8080 })]);
    expect(conflict?.message).toBe('host port 8080/tcp on all addresses is already published by endpoint 3f2a1b2c3d4e');
  });

  it('returns the first clash in the order of the incoming exposures', () => {
    const existing = [held(ex({ hostPort: 9000 }), 'container a', 'a'.repeat(64)), held(ex({ hostPort: 8080 }), 'container b', 'b'.repeat(64))];
    const conflict = findConflict(existing, NEW, [ex({ hostPort: 7000 }), ex({ hostPort: 8080 }), ex({ hostPort: 9000 })]);
    expect(conflict?.port).toBe(8080);
    expect(conflict?.message).toContain('(container b)');
  });

  it('treats a claim of the same endpoint for the same exposure as a replay', () => {
    const same = ex({ hostPort: 8080 });
    expect(findConflict([held(same, 'me', NEW)], NEW, [same])).toBeUndefined();
    // ...but another endpoint holding the very same thing is a clash,
    expect(findConflict([held(same)], NEW, [same])?.port).toBe(8080);
    // ...and so is the same endpoint holding it through the other origin (two DNATs for one port).
    expect(findConflict([held({ ...same, origin: 'option' }, 'me', NEW)], NEW, [same])?.message).toBe(
      'host port 8080/tcp on all addresses is already published by endpoint c749b172b5f2 (me)',
    );
  });

  it('finds nothing with nothing held and nothing asked', () => {
    expect(findConflict([], NEW, [ex({ hostPort: 80 })])).toBeUndefined();
    expect(findConflict([held(ex({ hostPort: 80 }))], NEW, [])).toBeUndefined();
  });
});

describe('findConflict within the incoming set', () => {
  it('names both exposures', () => {
    const first = ex({ hostPort: 8080 });
    const second = ex({ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 81, containerPortEnd: 81 });
    expect(findConflict([], NEW, [first, second])).toEqual({
      port: 8080,
      proto: 'tcp',
      hostIp: '127.0.0.1',
      exposure: second,
      holder: { sibling: first },
      message: 'host port 8080/tcp on 127.0.0.1 is published twice: *:8080→80/tcp and 127.0.0.1:8080→81/tcp',
    });
  });

  it('catches an exact repeat (Docker keeps duplicate -p bindings)', () => {
    const same = ex({ hostPort: 8080 });
    expect(findConflict([], NEW, [same, same])?.message).toBe(
      'host port 8080/tcp on all addresses is published twice: *:8080→80/tcp and *:8080→80/tcp',
    );
  });

  it.each<[string, Exposure[]]>([
    ['IPv4-wide and IPv6-wide', [ex({ hostIp: '0.0.0.0', hostPort: 80 }), ex({ hostIp: '::', hostPort: 80 })]],
    ['tcp and udp', [ex({ hostPort: 53 }), ex({ hostPort: 53, proto: 'udp' })]],
    ['two ephemeral ports', [ex({ hostPort: 0, hostPortEnd: 0 }), ex({ hostPort: 0, hostPortEnd: 0 })]],
  ])('allows %s', (_, incoming) => {
    expect(findConflict([], NEW, incoming)).toBeUndefined();
  });

  it('checks existing claims before siblings for each exposure', () => {
    const first = ex({ hostPort: 8080 });
    const conflict = findConflict([held(ex({ hostPort: 8080 }))], NEW, [first, ex({ hostPort: 8080 })]);
    expect(conflict?.exposure).toBe(first);
    expect(conflict?.holder).toHaveProperty('claim');
  });
});

describe('overlap', () => {
  it('is symmetric', () => {
    const pairs: [Exposure, Exposure][] = [
      [ex({ hostPort: 8000, hostPortEnd: 8010, containerPort: 1, containerPortEnd: 11 }), ex({ hostIp: '127.0.0.1', hostPort: 8010 })],
      [ex({ hostIp: '::', hostPort: 1 }), ex({ hostIp: '::1', hostPort: 1 })],
      [ex({ hostIp: '0.0.0.0', hostPort: 1 }), ex({ hostIp: '::1', hostPort: 1 })],
    ];
    for (const [a, b] of pairs) expect(overlap(a, b)).toEqual(overlap(b, a));
  });
});

describe('findConflict with interface bindings', () => {
  const by = 'by endpoint 3f2a1b2c3d4e (container web1)';
  const eth0 = (p: Partial<Exposure> = {}) => ex({ hostIface: 'eth0', hostPort: 8080, ...p });
  const may = (ip: string) => ` (${ip} may be an address of eth0: an interface binding holds its port on every address that is not loopback)`;
  it.each<[string, Exposure, Exposure, string | undefined]>([
    ['same interface', eth0(), eth0({ containerPort: 81, containerPortEnd: 81 }), `host port 8080/tcp on %eth0 is already published ${by}`],
    ['all addresses held, interface asked', ex({ hostPort: 8080 }), eth0(), `host port 8080/tcp on %eth0 is already published on all addresses ${by}`],
    ['interface held, all addresses asked', eth0(), ex({ hostPort: 8080 }), `host port 8080/tcp on %eth0 is already published ${by}`],
    ['0.0.0.0 held, interface asked', ex({ hostIp: '0.0.0.0', hostPort: 8080 }), eth0(),
      `host port 8080/tcp on the IPv4 addresses of %eth0 is already published on 0.0.0.0 ${by}`],
    ['interface held, :: asked', eth0(), ex({ hostIp: '::', hostPort: 8080 }),
      `host port 8080/tcp on the IPv6 addresses of %eth0 is already published on %eth0 ${by}`],
    ['one IPv4 held, interface asked', ex({ hostIp: '198.51.100.1', hostPort: 8080 }), eth0(),
      `host port 8080/tcp on 198.51.100.1 is already published ${by}${may('198.51.100.1')}`],
    ['interface held, one IPv6 asked', eth0(), ex({ hostIp: '2001:db8::1', hostPort: 8080 }),
      `host port 8080/tcp on [2001:db8::1] is already published on %eth0 ${by}${may('[2001:db8::1]')}`],
    ['ranges over an interface', eth0({ hostPort: 8000, hostPortEnd: 8010, containerPort: 8000, containerPortEnd: 8010 }), eth0({ hostPort: 8010 }),
      `host port 8010/tcp on %eth0 is already published ${by}`],
    // Sources never matter: one host port leads to one endpoint whoever may use it.
    ['same interface, other sources', eth0({ sources: ['10.0.0.0/8'] }), eth0({ sources: ['192.0.2.0/24'] }),
      `host port 8080/tcp on %eth0 is already published ${by}`],
    ['all addresses, other sources', ex({ hostPort: 8080, sources: ['10.0.0.0/8'] }), ex({ hostPort: 8080, sources: ['0.0.0.0/0', '::/0'] }),
      `host port 8080/tcp on all addresses is already published ${by}`],
    // No clash:
    ['other interface', eth0(), ex({ hostIface: 'eth1', hostPort: 8080 }), undefined],
    ['interface names are case-sensitive', eth0(), ex({ hostIface: 'ETH0', hostPort: 8080 }), undefined],
    ['interface vs 127.0.0.1', eth0(), ex({ hostIp: '127.0.0.1', hostPort: 8080 }), undefined],
    ['127.0.0.9 vs interface', ex({ hostIp: '127.0.0.9', hostPort: 8080 }), eth0(), undefined],
    ['interface vs ::1', eth0(), ex({ hostIp: '::1', hostPort: 8080 }), undefined],
    ['interface, other protocol', eth0(), eth0({ proto: 'udp' }), undefined],
    ['interface, other port', eth0(), eth0({ hostPort: 8081 }), undefined],
  ])('%s', (_, existing, incoming, message) => {
    expect(findConflict([held(existing)], NEW, [incoming])?.message).toBe(message);
  });

  it('reports the interface in the data', () => {
    const holder = held(ex({ hostIface: 'eth0', hostPort: 8080 }));
    const wanted = ex({ hostIp: '0.0.0.0', hostPort: 8080 });
    expect(findConflict([holder], NEW, [wanted])).toMatchObject({ port: 8080, hostIp: '0.0.0.0', hostIface: 'eth0' });
  });

  it('names both siblings, interface and sources included', () => {
    const first = ex({ hostIface: 'eth0', hostPort: 8080, sources: ['10.0.0.0/8'] });
    const second = ex({ hostIp: '198.51.100.1', hostPort: 8080, sources: ['0.0.0.0/0', '::/0'] });
    expect(findConflict([], NEW, [first, second])?.message).toBe(
      'host port 8080/tcp on 198.51.100.1 is published twice: %eth0:8080→80/tcp@10.0.0.0/8 and 198.51.100.1:8080→80/tcp@any' +
        ' (198.51.100.1 may be an address of eth0: an interface binding holds its port on every address that is not loopback)',
    );
  });

  it('is a replay only when interface and sources match too', () => {
    const mine = ex({ hostIface: 'eth0', hostPort: 8080, sources: ['10.0.0.0/8'] });
    expect(findConflict([held(mine, 'me', NEW)], NEW, [{ ...mine, sources: ['10.0.0.0/8'] }])).toBeUndefined();
    expect(findConflict([held(mine, 'me', NEW)], NEW, [{ ...mine, sources: ['192.0.2.0/24'] }])?.port).toBe(8080);
    expect(findConflict([held(mine, 'me', NEW)], NEW, [{ ...mine, hostIface: undefined }])?.port).toBe(8080);
  });
});

describe('exposureKey', () => {
  it('tells interface, address and sources apart', () => {
    const base = ex({ hostPort: 8080 });
    const keys = [
      base,
      { ...base, hostIface: 'eth0' },
      { ...base, hostIface: 'eth1' },
      { ...base, hostIp: '0.0.0.0' },
      { ...base, sources: ['10.0.0.0/8'] },
      { ...base, sources: ['0.0.0.0/0', '::/0'] },
    ].map(exposureKey);
    expect(new Set(keys).size).toBe(keys.length);
    expect(sameExposure({ ...base, sources: ['10.0.0.0/8'] }, { ...base, sources: ['10.0.0.0/8'] })).toBe(true);
  });
});

describe('overlap with interfaces', () => {
  it('is symmetric', () => {
    const e = (p: Partial<Exposure>) => ex({ hostPort: 1, ...p });
    const hosts: Partial<Exposure>[] = [
      {}, { hostIp: '0.0.0.0' }, { hostIp: '::' }, { hostIp: '127.0.0.1' }, { hostIp: '::1' }, { hostIp: '198.51.100.1' },
      { hostIp: '2001:db8::1' }, { hostIface: 'eth0' }, { hostIface: 'eth1' },
    ];
    for (const a of hosts) for (const b of hosts) expect(overlap(e(a), e(b))).toEqual(overlap(e(b), e(a)));
  });
});
