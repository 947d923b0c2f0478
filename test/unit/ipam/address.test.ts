import IPCIDR from 'ip-cidr';
import { describe, expect, it } from 'vitest';
import {
  cidrContains,
  cidrContainsCidr,
  cidrFirst,
  cidrLast,
  cidrOf,
  cidrOverlaps,
  cidrSize,
  formatCidr,
  formatIp,
  ipKey,
  parseAddressWithPrefix,
  parseCidr,
  parseIp,
  parseIpKey,
} from '../../../src/ipam/address.js';
import { type Cidr, type Ip, IpamError } from '../../../src/ipam/types.js';

// A small seeded generator, so that a failing random case can be replayed.
function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBits(next: () => number, bits: number): bigint {
  let value = 0n;
  for (let i = 0; i < bits; i += 16) value = (value << 16n) | BigInt(Math.floor(next() * 65536));
  return value & ((1n << BigInt(bits)) - 1n);
}

const v4 = (text: string): Ip => parseIp(text, 'test');
const v6 = v4;
const cidr = (text: string): Cidr => parseCidr(text, 'test');

describe('parseIp', () => {
  it.each([
    ['0.0.0.0', 0n],
    ['255.255.255.255', 0xffffffffn],
    ['198.18.1.10', 0xc612010an],
    ['10.0.0.1', 0x0a000001n],
    ['1.2.3.4', 0x01020304n],
  ])('reads IPv4 %s', (text, value) => {
    expect(parseIp(text, 'Address')).toEqual({ family: 4, value });
  });

  it.each([
    ['::', 0n],
    ['::1', 1n],
    ['1::', 1n << 112n],
    ['2001:DB8::1', 0x20010db8000000000000000000000001n],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', 0x20010db8000000000000000000000001n],
    ['1:2:3:4:5:6:7:8', 0x00010002000300040005000600070008n],
    ['1:2:3:4:5:6:7::', 0x00010002000300040005000600070000n],
    ['::ffff:1.2.3.4', 0xffff01020304n],
    ['::ffff:10.20.30.40', 0xffff0a141e28n],
    ['64:ff9b::192.0.2.33', 0x0064ff9b0000000000000000c0000221n],
    ['1:2:3:4:5:6:1.2.3.4', 0x00010002000300040005000601020304n],
  ])('reads IPv6 %s', (text, value) => {
    expect(parseIp(text, 'Address')).toEqual({ family: 6, value });
  });

  it.each([
    'junk',
    '',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1.2.3.4\n',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1.2.3.256',
    '010.1.1.1',
    '1.2.3.04',
    '00.1.1.1',
    '0x1.2.3.4',
    '+1.2.3.4',
    '1.2.3.-1',
    '１.2.3.4',
    '1.2.3.4/24',
    'fe80::1%eth0',
    'fe80::1%1',
    '[::1]',
    '::1/128',
    '1::2::3',
    ':::',
    '12345::',
    ':1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:',
    '1:2:3:4:5:6:7:8:9',
    '1::2:3:4:5:6:7:8',
    'g::1',
    '::1.2.3',
    '::1.2.3.256',
    '::01.2.3.4',
    '1.2.3.4::',
    '::1.2.3.4:1',
    '1:2:3:4:5:6:7:1.2.3.4',
  ])('refuses %j with the field and value in the message', (text) => {
    const message = `Address ${JSON.stringify(text)} is not an IP address`;
    expect(() => parseIp(text, 'Address')).toThrow(new IpamError(message));
  });

  it('throws IpamError, not a generic Error', () => {
    expect(() => parseIp('nope', 'Address')).toThrow(IpamError);
  });

  it('refuses non-string input from loosely typed callers', () => {
    expect(() => parseIp(42 as unknown as string, 'Address')).toThrow('Address "42" is not an IP address');
    expect(() => parseIp(undefined as unknown as string, 'Address')).toThrow(
      'Address "undefined" is not an IP address',
    );
  });

  it('keeps a huge input out of the message', () => {
    const text = 'x'.repeat(10_000);
    const error = (() => {
      try {
        parseIp(text, 'Address');
      } catch (e) {
        return e as Error;
      }
      throw new Error('did not throw');
    })();
    expect(error.message).toBe(`Address "${'x'.repeat(80)}…" is not an IP address`);
  });
});

describe('parseCidr', () => {
  it('reads IPv4 and IPv6 prefixes', () => {
    expect(cidr('198.18.1.0/24')).toEqual({ family: 4, network: 0xc6120100n, prefix: 24 });
    expect(cidr('0.0.0.0/0')).toEqual({ family: 4, network: 0n, prefix: 0 });
    expect(cidr('198.18.1.7/32')).toEqual({ family: 4, network: 0xc6120107n, prefix: 32 });
    expect(cidr('2001:db8::/64')).toEqual({ family: 6, network: 0x20010db8n << 96n, prefix: 64 });
    expect(cidr('::/0')).toEqual({ family: 6, network: 0n, prefix: 0 });
    expect(cidr('2001:db8::1/128')).toEqual({ family: 6, network: (0x20010db8n << 96n) + 1n, prefix: 128 });
  });

  it('clears host bits when not strict', () => {
    expect(parseCidr('198.18.1.10/24', 'Pool')).toEqual(cidr('198.18.1.0/24'));
    expect(parseCidr('198.18.1.10/24', 'Pool', { strict: false })).toEqual(cidr('198.18.1.0/24'));
    expect(parseCidr('2001:db8::1/64', 'Pool')).toEqual(cidr('2001:db8::/64'));
  });

  it('with strict, refuses host bits and suggests the network address', () => {
    expect(() => parseCidr('198.18.1.10/24', 'Pool', { strict: true })).toThrow(
      new IpamError('Pool "198.18.1.10/24" has host bits set; did you mean "198.18.1.0/24"?'),
    );
    expect(() => parseCidr('10.1.2.3/8', 'SubPool', { strict: true })).toThrow(
      'SubPool "10.1.2.3/8" has host bits set; did you mean "10.0.0.0/8"?',
    );
    expect(() => parseCidr('2001:DB8::1/64', 'Pool', { strict: true })).toThrow(
      'Pool "2001:DB8::1/64" has host bits set; did you mean "2001:db8::/64"?',
    );
    expect(parseCidr('198.18.1.0/24', 'Pool', { strict: true })).toEqual(cidr('198.18.1.0/24'));
    expect(parseCidr('198.18.1.10/32', 'Pool', { strict: true }).network).toBe(0xc612010an);
  });

  it.each([
    ['1.2.3.4/33', '"33"', 4, 32],
    ['1.2.3.4/', '""', 4, 32],
    ['1.2.3.4/024', '"024"', 4, 32],
    ['1.2.3.4/-1', '"-1"', 4, 32],
    ['1.2.3.4/ 24', '" 24"', 4, 32],
    ['1.2.3.4/24 ', '"24 "', 4, 32],
    ['1.2.3.4/24/8', '"24/8"', 4, 32],
    ['1.2.3.4/1e1', '"1e1"', 4, 32],
    ['1.2.3.4/255.255.255.0', '"255.255.255.0"', 4, 32],
    ['2001:db8::/129', '"129"', 6, 128],
    ['2001:db8::/1000', '"1000"', 6, 128],
  ])('refuses the prefix length of %s', (text, prefix, family, bits) => {
    expect(() => parseCidr(text, 'Pool')).toThrow(
      new IpamError(
        `Pool ${JSON.stringify(text)} has an invalid prefix length ${prefix} (IPv${family} allows 0 to ${bits})`,
      ),
    );
  });

  it('refuses a value without a prefix', () => {
    expect(() => parseCidr('198.18.1.0', 'Pool')).toThrow(
      new IpamError('Pool "198.18.1.0" is not a CIDR (expected address/prefix, e.g. 198.18.1.0/24)'),
    );
    expect(() => parseCidr('', 'Pool')).toThrow('Pool "" is not a CIDR (expected address/prefix');
  });

  it.each([
    ['1.2.3/24', '1.2.3'],
    ['256.0.0.0/8', '256.0.0.0'],
    ['010.0.0.0/8', '010.0.0.0'],
    ['fe80::%eth0/64', 'fe80::%eth0'],
    [' 10.0.0.0/8', ' 10.0.0.0'],
    ['/24', ''],
    ['junk/24', 'junk'],
  ])('refuses the address part of %s', (text, address) => {
    expect(() => parseCidr(text, 'SubPool')).toThrow(
      new IpamError(`SubPool ${JSON.stringify(text)} is not a CIDR: ${JSON.stringify(address)} is not an IP address`),
    );
  });
});

describe('parseAddressWithPrefix', () => {
  it('keeps the host bits', () => {
    expect(parseAddressWithPrefix('198.18.1.10/24', 'Address')).toEqual({ ip: v4('198.18.1.10'), prefix: 24 });
    expect(parseAddressWithPrefix('198.18.1.10/32', 'Address')).toEqual({ ip: v4('198.18.1.10'), prefix: 32 });
    expect(parseAddressWithPrefix('2001:db8::5/64', 'Address')).toEqual({ ip: v6('2001:db8::5'), prefix: 64 });
  });

  it('names the field in its errors', () => {
    expect(() => parseAddressWithPrefix('198.18.1.10', 'Gateway')).toThrow(
      'Gateway "198.18.1.10" is not a CIDR (expected address/prefix',
    );
    expect(() => parseAddressWithPrefix('198.18.1.10/40', 'Gateway')).toThrow(
      'Gateway "198.18.1.10/40" has an invalid prefix length "40" (IPv4 allows 0 to 32)',
    );
    expect(() => parseAddressWithPrefix('198.18.1/24', 'Gateway')).toThrow(
      'Gateway "198.18.1/24" is not a CIDR: "198.18.1" is not an IP address',
    );
  });
});

describe('formatIp', () => {
  it('writes IPv4 dotted-quad', () => {
    expect(formatIp({ family: 4, value: 0n })).toBe('0.0.0.0');
    expect(formatIp({ family: 4, value: 0xffffffffn })).toBe('255.255.255.255');
    expect(formatIp({ family: 4, value: 0xc612010an })).toBe('198.18.1.10');
  });

  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['FE80::ABCD', 'fe80::abcd'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    // A lone zero group is not compressed (RFC 5952 §4.2.2).
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // The longest run wins (§4.2.3) ...
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:0:1:0:0:0', '2001:db8:0:0:1::'],
    // ... and the first one on a tie.
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['0:0:1:0:0:1:0:0', '::1:0:0:1:0:0'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['0:1:0:1:0:1:0:1', '0:1:0:1:0:1:0:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    // IPv4-mapped addresses keep their IPv4 tail (§5), however they were written.
    ['::ffff:1.2.3.4', '::ffff:1.2.3.4'],
    ['::ffff:0102:0304', '::ffff:1.2.3.4'],
    ['::1.2.3.4', '::102:304'],
  ])('writes %s as %s (RFC 5952)', (input, output) => {
    expect(formatIp(v6(input))).toBe(output);
  });

  it('refuses a value that does not fit the family', () => {
    expect(() => formatIp({ family: 4, value: 1n << 32n })).toThrow(IpamError);
    expect(() => formatIp({ family: 4, value: -1n })).toThrow(IpamError);
    expect(() => formatIp({ family: 6, value: 1n << 128n })).toThrow('out of range for IPv6');
  });

  it('round-trips random addresses and agrees with ip-cidr on their value', () => {
    const next = rng(1);
    for (let i = 0; i < 2000; i++) {
      const family = i % 2 === 0 ? 4 : 6;
      // Zero runs are where formatting goes wrong, so clear random 16-bit groups.
      let value = randomBits(next, family === 4 ? 32 : 128);
      if (family === 6) for (let g = 0n; g < 8n; g++) if (next() < 0.5) value &= ~(0xffffn << (16n * g));
      const text = formatIp({ family, value });
      expect(parseIp(text, 'a')).toEqual({ family, value });
      expect(text).toBe(text.toLowerCase());
      if (family === 6 && value >> 32n === 0xffffn) continue; // ip-cidr reads mapped addresses as IPv4
      expect(BigInt(IPCIDR.createAddress(text).bigInteger().toString())).toBe(value);
    }
  });

  it('writes CIDRs', () => {
    expect(formatCidr(cidr('198.18.1.0/24'))).toBe('198.18.1.0/24');
    expect(formatCidr(cidr('2001:0DB8:0:0::/48'))).toBe('2001:db8::/48');
    expect(formatCidr(cidrOf(v4('198.18.1.10'), 30))).toBe('198.18.1.8/30');
  });
});

describe('CIDR arithmetic', () => {
  it.each([
    ['198.18.1.7/32', '198.18.1.7', '198.18.1.7', 1n],
    ['198.18.1.6/31', '198.18.1.6', '198.18.1.7', 2n],
    ['198.18.1.0/24', '198.18.1.0', '198.18.1.255', 256n],
    ['198.18.0.0/15', '198.18.0.0', '198.19.255.255', 131072n],
    ['0.0.0.0/0', '0.0.0.0', '255.255.255.255', 1n << 32n],
    ['2001:db8::/64', '2001:db8::', '2001:db8::ffff:ffff:ffff:ffff', 1n << 64n],
    ['2001:db8::/127', '2001:db8::', '2001:db8::1', 2n],
    ['2001:db8::1/128', '2001:db8::1', '2001:db8::1', 1n],
    ['::/0', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 1n << 128n],
  ])('%s spans %s to %s', (text, first, last, size) => {
    const c = cidr(text);
    expect(cidrFirst(c)).toBe(v4(first).value);
    expect(cidrLast(c)).toBe(v4(last).value);
    expect(cidrSize(c)).toBe(size);
  });

  it('contains addresses of its own family at and between its edges only', () => {
    const c = cidr('198.18.1.0/24');
    expect(cidrContains(c, v4('198.18.1.0'))).toBe(true);
    expect(cidrContains(c, v4('198.18.1.255'))).toBe(true);
    expect(cidrContains(c, v4('198.18.0.255'))).toBe(false);
    expect(cidrContains(c, v4('198.18.2.0'))).toBe(false);
    expect(cidrContains(cidr('::/0'), v4('1.2.3.4'))).toBe(false);
    expect(cidrContains(cidr('0.0.0.0/0'), v6('::1'))).toBe(false);
    const c6 = cidr('2001:db8::/64');
    expect(cidrContains(c6, v6('2001:db8::ffff:ffff:ffff:ffff'))).toBe(true);
    expect(cidrContains(c6, v6('2001:db8:0:1::'))).toBe(false);
  });

  it('contains another CIDR only when it covers it entirely', () => {
    const pool = cidr('198.18.1.0/24');
    expect(cidrContainsCidr(pool, pool)).toBe(true);
    expect(cidrContainsCidr(pool, cidr('198.18.1.128/25'))).toBe(true);
    expect(cidrContainsCidr(pool, cidr('198.18.1.255/32'))).toBe(true);
    expect(cidrContainsCidr(pool, cidr('198.18.0.0/23'))).toBe(false);
    expect(cidrContainsCidr(pool, cidr('198.18.2.0/25'))).toBe(false);
    expect(cidrContainsCidr(cidr('2001:db8::/32'), cidr('2001:db8:ffff::/48'))).toBe(true);
    expect(cidrContainsCidr(cidr('2001:db8::/48'), cidr('2001:db8::/32'))).toBe(false);
    expect(cidrContainsCidr(cidr('::/0'), cidr('0.0.0.0/0'))).toBe(false);
  });

  it('overlaps when the ranges share an address', () => {
    const a = cidr('198.18.1.0/24');
    expect(cidrOverlaps(a, a)).toBe(true);
    expect(cidrOverlaps(a, cidr('198.18.0.0/16'))).toBe(true);
    expect(cidrOverlaps(cidr('198.18.0.0/16'), a)).toBe(true);
    expect(cidrOverlaps(a, cidr('198.18.1.255/32'))).toBe(true);
    expect(cidrOverlaps(cidr('198.18.1.255/32'), a)).toBe(true);
    expect(cidrOverlaps(cidr('198.18.1.0/32'), a)).toBe(true);
    expect(cidrOverlaps(cidr('198.18.1.7/32'), cidr('198.18.1.7/32'))).toBe(true);
    expect(cidrOverlaps(cidr('198.18.1.7/32'), cidr('198.18.1.8/32'))).toBe(false);
    expect(cidrOverlaps(a, cidr('198.18.2.0/24'))).toBe(false);
    expect(cidrOverlaps(a, cidr('198.18.0.0/24'))).toBe(false);
    expect(cidrOverlaps(cidr('2001:db8::/64'), cidr('2001:db8::/48'))).toBe(true);
    expect(cidrOverlaps(cidr('2001:db8::/64'), cidr('2001:db8:0:1::/64'))).toBe(false);
    // Numerically the same, but a different family.
    expect(cidrOverlaps(cidr('0.0.0.0/0'), cidr('::/96'))).toBe(false);
  });

  it('agrees with ip-cidr on random prefixes', () => {
    const next = rng(2);
    for (let i = 0; i < 500; i++) {
      const family = i % 2 === 0 ? 4 : 6;
      const bits = family === 4 ? 32 : 128;
      const prefix = Math.floor(next() * (bits + 1));
      const c = cidrOf({ family, value: randomBits(next, bits) }, prefix);
      const reference = new IPCIDR(formatCidr(c));
      expect(cidrFirst(c)).toBe(reference.start<bigint>({ type: 'bigInteger' }));
      expect(cidrLast(c)).toBe(reference.end<bigint>({ type: 'bigInteger' }));
      expect(cidrSize(c)).toBe(reference.size);
      const probe = { family, value: next() < 0.5 ? cidrLast(c) : randomBits(next, bits) } as Ip;
      if (family === 6 && probe.value >> 32n === 0xffffn) continue;
      expect(cidrContains(c, probe)).toBe(reference.contains(formatIp(probe)));
    }
  });
});

describe('ipKey', () => {
  it('is fixed-width with a family prefix', () => {
    expect(ipKey(v4('198.18.1.10'))).toBe('4-000000000000000000000000c612010a');
    expect(ipKey(v6('2001:db8::1'))).toBe('6-20010db8000000000000000000000001');
    expect(ipKey(v4('0.0.0.0'))).toHaveLength(34);
    expect(ipKey(v6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))).toHaveLength(34);
  });

  it('sorts like the addresses (IPv4 first)', () => {
    const ips = ['10.0.0.2', '10.0.0.10', '9.255.255.255', '::1', '255.255.255.255', '2001:db8::', '::'].map(v4);
    const byKey = [...ips].sort((a, b) => (ipKey(a) < ipKey(b) ? -1 : 1)).map(formatIp);
    expect(byKey).toEqual(['9.255.255.255', '10.0.0.2', '10.0.0.10', '255.255.255.255', '::', '::1', '2001:db8::']);
  });

  it('reads back', () => {
    for (const text of ['198.18.1.10', '0.0.0.0', '2001:db8::1', '::ffff:1.2.3.4']) {
      expect(parseIpKey(ipKey(v4(text)))).toEqual(v4(text));
    }
    for (const bad of ['4-c612010a', '5-000000000000000000000000c612010a', '4-000000000000000000000001c612010a', '']) {
      expect(() => parseIpKey(bad)).toThrow(new IpamError(`ip key ${JSON.stringify(bad)} is malformed`));
    }
  });
});
