import { describe, expect, it } from 'vitest';
import { cidrOf, cidrOverlaps, formatCidr, parseCidr } from '../../../src/ipam/address.js';
import { carveSubnet } from '../../../src/ipam/carve.js';
import { type Cidr, IpamError } from '../../../src/ipam/types.js';

const cidr = (text: string): Cidr => parseCidr(text, 'test', { strict: true });
const carve = (range: string, prefix: number, inUse: string[] = [], after?: string): string | undefined => {
  const got = carveSubnet(cidr(range), prefix, inUse.map(cidr), after ? cidr(after) : undefined);
  return got && formatCidr(got);
};

describe('carveSubnet', () => {
  it('takes the first block of an empty range', () => {
    expect(carve('198.18.0.0/15', 24)).toBe('198.18.0.0/24');
    expect(carve('198.18.0.0/15', 15)).toBe('198.18.0.0/15');
    expect(carve('198.18.0.0/15', 32)).toBe('198.18.0.0/32');
    expect(carve('2001:db8::/48', 64)).toBe('2001:db8::/64');
  });

  it('fills holes between used subnets', () => {
    expect(carve('198.18.0.0/15', 24, ['198.18.0.0/24', '198.18.1.0/24', '198.18.3.0/24'])).toBe('198.18.2.0/24');
    expect(carve('198.18.0.0/15', 24, ['198.18.3.0/24', '198.18.0.0/24', '198.18.1.0/24'])).toBe('198.18.2.0/24');
  });

  it('skips blocks that a larger, smaller or straddling subnet touches', () => {
    expect(carve('198.18.0.0/15', 24, ['198.18.0.0/16'])).toBe('198.19.0.0/24');
    expect(carve('198.18.0.0/15', 24, ['198.18.0.77/32'])).toBe('198.18.1.0/24');
    expect(carve('198.18.0.0/15', 24, ['198.18.0.128/25', '198.18.1.0/30'])).toBe('198.18.2.0/24');
    expect(carve('198.18.0.0/15', 23, ['198.18.1.0/24'])).toBe('198.18.2.0/23');
  });

  it('ignores subnets outside the range and of the other family', () => {
    expect(carve('198.18.0.0/15', 24, ['10.0.0.0/8', '198.20.0.0/16', '::/0'])).toBe('198.18.0.0/24');
    expect(carve('2001:db8::/48', 64, ['0.0.0.0/0', '2001:db9::/32'])).toBe('2001:db8::/64');
  });

  it('copes with duplicate and nested entries', () => {
    const inUse = ['198.18.0.0/24', '198.18.0.0/24', '198.18.0.0/23', '198.18.1.5/32', '198.18.2.0/24'];
    expect(carve('198.18.0.0/15', 24, inUse)).toBe('198.18.3.0/24');
  });

  it('returns undefined when every block is in use', () => {
    const quarters = ['198.18.0.0/24', '198.18.1.0/24', '198.18.2.0/24', '198.18.3.0/24'];
    expect(carve('198.18.0.0/22', 24, quarters)).toBeUndefined();
    expect(carve('198.18.0.0/22', 24, quarters, '198.18.1.0/24')).toBeUndefined();
    expect(carve('198.18.0.0/22', 24, ['198.18.0.0/15'])).toBeUndefined();
    expect(carve('198.18.0.0/22', 22, ['198.18.3.255/32'])).toBeUndefined();
    // Three /24s are free but no /23 is whole.
    expect(carve('198.18.0.0/22', 23, ['198.18.0.9/32', '198.18.2.9/32'])).toBeUndefined();
  });

  it('continues after the subnet handed out last', () => {
    expect(carve('198.18.0.0/15', 24, [], '198.18.5.0/24')).toBe('198.18.6.0/24');
    expect(carve('198.18.0.0/15', 24, ['198.18.6.0/24', '198.18.7.0/24'], '198.18.5.0/24')).toBe('198.18.8.0/24');
    // `after` larger than the block: continue past its end.
    expect(carve('198.18.0.0/15', 24, [], '198.18.0.0/16')).toBe('198.19.0.0/24');
    // `after` smaller than the block: the next block, not the rest of the one holding it.
    expect(carve('198.18.0.0/15', 24, [], '198.18.5.7/32')).toBe('198.18.6.0/24');
  });

  it('wraps to the bottom of the range', () => {
    expect(carve('198.18.0.0/22', 24, [], '198.18.3.0/24')).toBe('198.18.0.0/24');
    expect(carve('198.18.0.0/22', 24, ['198.18.0.0/24'], '198.18.2.0/24')).toBe('198.18.3.0/24');
    expect(carve('198.18.0.0/22', 24, ['198.18.3.0/24', '198.18.0.0/24'], '198.18.2.0/24')).toBe('198.18.1.0/24');
  });

  it('hands the released subnet out again only when nothing else is free', () => {
    expect(carve('198.18.0.0/22', 24, ['198.18.1.0/24', '198.18.3.0/24'], '198.18.2.0/24')).toBe('198.18.0.0/24');
    expect(carve('198.18.0.0/22', 24, ['198.18.0.0/24', '198.18.1.0/24', '198.18.3.0/24'], '198.18.2.0/24')).toBe(
      '198.18.2.0/24',
    );
  });

  it('starts at the bottom when `after` is outside the range or of the other family', () => {
    expect(carve('198.18.0.0/22', 24, [], '10.0.0.0/24')).toBe('198.18.0.0/24');
    expect(carve('198.18.0.0/22', 24, [], '2001:db8::/64')).toBe('198.18.0.0/24');
    expect(carve('198.18.0.0/22', 24, [], '198.0.0.0/8')).toBe('198.18.0.0/24');
  });

  it('gives different answers while Docker holds the earlier ones, until the range is full', () => {
    const range = cidr('198.18.0.0/21');
    const held: Cidr[] = [];
    let after: Cidr | undefined;
    for (let i = 0; i < 8; i++) {
      const next = carveSubnet(range, 24, held, after);
      expect(next).toBeDefined();
      if (!next) return;
      expect(held.some((h) => cidrOverlaps(h, next))).toBe(false);
      held.push(next);
      after = next;
    }
    expect(held.map(formatCidr)).toEqual(Array.from({ length: 8 }, (_, i) => `198.18.${i}.0/24`));
    expect(carveSubnet(range, 24, held, after)).toBeUndefined();
  });

  it('round-robin: a released subnet is not the next answer', () => {
    const range = cidr('198.18.0.0/22');
    const held: Cidr[] = [];
    let after: Cidr | undefined;
    const take = () => {
      const next = carveSubnet(range, 24, held, after);
      if (next) {
        held.push(next);
        after = next;
      }
      return next && formatCidr(next);
    };
    expect([take(), take(), take()]).toEqual(['198.18.0.0/24', '198.18.1.0/24', '198.18.2.0/24']);
    held.splice(1, 1); // 198.18.1.0/24 released
    expect(take()).toBe('198.18.3.0/24');
    expect(take()).toBe('198.18.1.0/24');
    expect(take()).toBeUndefined();
  });

  it('jumps over many used subnets instead of walking block by block', () => {
    // 65,535 of the 65,536 /24s of a /8 in use: the one free block is the last.
    const range = cidr('10.0.0.0/8');
    const inUse = Array.from({ length: 65535 }, (_, i) => cidrOf({ family: 4, value: 0x0a000000n + BigInt(i) * 256n }, 24));
    const started = performance.now();
    expect(formatCidr(carveSubnet(range, 24, inUse)!)).toBe('10.255.255.0/24');
    expect(formatCidr(carveSubnet(range, 24, inUse, inUse[100])!)).toBe('10.255.255.0/24');
    expect(carveSubnet(range, 24, [...inUse, cidr('10.255.255.0/24')], inUse[100])).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('IPv6: 2^32 blocks of a /32 are never enumerated', () => {
    expect(carve('2001:db8::/32', 64, ['2001:db8::/48'])).toBe('2001:db8:1::/64');
    expect(carve('2001:db8::/32', 64, ['2001:db8::/33'])).toBe('2001:db8:8000::/64');
    expect(carve('2001:db8::/32', 64, ['2001:db8:8000::/33'], '2001:db8:7fff:ffff::/64')).toBe('2001:db8::/64');
    expect(carve('2001:db8::/32', 64, ['2001:db8::/32'])).toBeUndefined();
    expect(carve('2001:db8::/32', 128, [], '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/128')).toBe('2001:db8::/128');
  });

  it.each([
    ['198.18.0.0/15', 14, 15, 32],
    ['198.18.0.0/15', 33, 15, 32],
    ['198.18.0.0/15', 24.5, 15, 32],
    ['198.18.0.0/15', Number.NaN, 15, 32],
    ['2001:db8::/48', 129, 48, 128],
    ['2001:db8::/48', 32, 48, 128],
  ])('refuses to carve %s into /%s', (range, prefix, min, max) => {
    expect(() => carveSubnet(cidr(range), prefix, [])).toThrow(
      new IpamError(
        `subnet prefix length "${prefix}" cannot be carved from "${range}": it must be between ${min} and ${max}`,
      ),
    );
  });

  it('matches a brute-force round-robin on random small cases', () => {
    let seed = 11;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const range = cidr('198.18.1.0/24');
    for (let round = 0; round < 500; round++) {
      const prefix = 26 + Math.floor(random() * 5); // /26 to /30
      const inUse: Cidr[] = [];
      const count = Math.floor(random() * 8);
      for (let i = 0; i < count; i++) {
        const p = 22 + Math.floor(random() * 11);
        inUse.push(cidrOf({ family: 4, value: 0xc6120100n - 256n + BigInt(Math.floor(random() * 768)) }, p));
      }
      const after =
        random() < 0.3 ? undefined : cidrOf({ family: 4, value: 0xc6120100n + BigInt(Math.floor(random() * 256)) }, prefix);
      const size = 1n << BigInt(32 - prefix);
      const blocks: Cidr[] = [];
      for (let v = range.network; v < range.network + 256n; v += size) blocks.push({ family: 4, network: v, prefix });
      const start = after === undefined ? 0 : blocks.findIndex((b) => b.network > after.network);
      const order = start < 0 ? blocks : [...blocks.slice(start), ...blocks.slice(0, start)];
      const expected = order.find((b) => !inUse.some((u) => cidrOverlaps(u, b)));
      expect(carveSubnet(range, prefix, inUse, after)).toEqual(expected);
    }
  });
});
