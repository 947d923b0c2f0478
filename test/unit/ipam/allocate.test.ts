import { describe, expect, it } from 'vitest';
import { formatIp, parseCidr, parseIp } from '../../../src/ipam/address.js';
import { capacity, isAllocatable, nextFree, usableRange, type UsableRange } from '../../../src/ipam/allocate.js';
import { type Cidr, IpamError } from '../../../src/ipam/types.js';

const cidr = (text: string): Cidr => parseCidr(text, 'test', { strict: true });
const ip = (text: string): bigint => parseIp(text, 'test').value;
const text = (range: UsableRange, value: bigint): string => formatIp({ family: range.family, value });

/** A pool with a set of holders and a cursor, driven the way the IPAM service drives nextFree. */
class Pool {
  readonly taken = new Set<bigint>();
  cursor: bigint | undefined;
  isTakenCalls = 0;
  /** Lookups allowed in total, so that a scanning (quadratic) allocator fails here instead of hanging. */
  lookupBudget = Infinity;

  constructor(readonly range: UsableRange) {}

  allocate(): bigint | undefined {
    const value = nextFree(
      this.range,
      this.cursor,
      (v) => {
        if (++this.isTakenCalls > this.lookupBudget) throw new Error(`more than ${this.lookupBudget} lookups`);
        return this.taken.has(v);
      },
      BigInt(this.taken.size),
    );
    if (value !== undefined) {
      // A plain check rather than expect(): this runs 65k times in the /16 test.
      if (this.taken.has(value)) throw new Error(`${text(this.range, value)} handed out twice`);
      this.taken.add(value);
      this.cursor = value;
    }
    return value;
  }

  allocateText(): string | undefined {
    const value = this.allocate();
    return value === undefined ? undefined : text(this.range, value);
  }

  release(address: string): void {
    expect(this.taken.delete(ip(address))).toBe(true);
  }

  drain(): string[] {
    const out: string[] = [];
    for (let a = this.allocateText(); a !== undefined; a = this.allocateText()) out.push(a);
    return out;
  }
}

const pool = (p: string, sub?: string) => new Pool(usableRange(cidr(p), sub ? cidr(sub) : undefined));

describe('usableRange', () => {
  it.each([
    ['198.18.1.0/24', '198.18.1.0', '198.18.1.255', ['198.18.1.0', '198.18.1.255'], 254n],
    ['198.18.0.0/16', '198.18.0.0', '198.18.255.255', ['198.18.0.0', '198.18.255.255'], 65534n],
    ['198.18.1.8/29', '198.18.1.8', '198.18.1.15', ['198.18.1.8', '198.18.1.15'], 6n],
    ['198.18.1.4/30', '198.18.1.4', '198.18.1.7', ['198.18.1.4', '198.18.1.7'], 2n],
    ['198.18.1.6/31', '198.18.1.6', '198.18.1.7', [], 2n],
    ['198.18.1.7/32', '198.18.1.7', '198.18.1.7', [], 1n],
    ['2001:db8::/64', '2001:db8::', '2001:db8::ffff:ffff:ffff:ffff', ['2001:db8::'], (1n << 64n) - 1n],
    ['2001:db8::/126', '2001:db8::', '2001:db8::3', ['2001:db8::'], 3n],
    ['2001:db8::/127', '2001:db8::', '2001:db8::1', [], 2n],
    ['2001:db8::1/128', '2001:db8::1', '2001:db8::1', [], 1n],
  ])('%s: %s to %s, excluding %j, %d usable', (p, first, last, excluded, size) => {
    const range = usableRange(cidr(p));
    expect(range.first).toBe(ip(first));
    expect(range.last).toBe(ip(last));
    expect([...range.excluded].map((v) => text(range, v)).sort()).toEqual([...excluded].sort());
    expect(capacity(range)).toBe(size);
  });

  it('narrows to the sub-pool and keeps only the reserved addresses inside it', () => {
    const upper = usableRange(cidr('198.18.1.0/24'), cidr('198.18.1.128/25'));
    expect([upper.first, upper.last]).toEqual([ip('198.18.1.128'), ip('198.18.1.255')]);
    expect([...upper.excluded]).toEqual([ip('198.18.1.255')]);
    expect(capacity(upper)).toBe(127n);

    const middle = usableRange(cidr('198.18.1.0/24'), cidr('198.18.1.16/28'));
    expect([middle.first, middle.last]).toEqual([ip('198.18.1.16'), ip('198.18.1.31')]);
    expect(middle.excluded.size).toBe(0);
    expect(capacity(middle)).toBe(16n);

    const whole = usableRange(cidr('198.18.1.0/24'), cidr('198.18.1.0/24'));
    expect(whole).toEqual(usableRange(cidr('198.18.1.0/24')));

    const v6 = usableRange(cidr('2001:db8::/64'), cidr('2001:db8::/120'));
    expect([...v6.excluded]).toEqual([ip('2001:db8::')]);
    expect(capacity(v6)).toBe(255n);
  });

  it('a sub-pool that holds only a reserved address has no capacity', () => {
    const range = usableRange(cidr('198.18.1.0/24'), cidr('198.18.1.255/32'));
    expect(capacity(range)).toBe(0n);
    expect(nextFree(range, undefined, () => false, 0n)).toBeUndefined();
  });

  it.each([
    ['198.18.1.0/24', '198.18.2.0/24'],
    ['198.18.1.0/24', '198.18.0.0/16'],
    ['198.18.1.0/24', '198.18.0.0/23'],
    ['198.18.1.0/24', '2001:db8::/120'],
    ['2001:db8::/64', '2001:db8:0:1::/120'],
  ])('refuses sub-pool %s ⊄ %s, naming both', (p, sub) => {
    expect(() => usableRange(cidr(p), cidr(sub))).toThrow(
      new IpamError(`SubPool ${JSON.stringify(sub)} is not inside Pool ${JSON.stringify(p)}`),
    );
  });

  it('isAllocatable: inside the range and not reserved', () => {
    const range = usableRange(cidr('198.18.1.0/24'), cidr('198.18.1.128/25'));
    expect(isAllocatable(range, ip('198.18.1.128'))).toBe(true);
    expect(isAllocatable(range, ip('198.18.1.254'))).toBe(true);
    expect(isAllocatable(range, ip('198.18.1.255'))).toBe(false);
    expect(isAllocatable(range, ip('198.18.1.127'))).toBe(false);
    expect(isAllocatable(range, ip('198.18.2.0'))).toBe(false);
  });
});

describe('nextFree', () => {
  it('/32: the one address, then nothing', () => {
    expect(pool('198.18.1.7/32').drain()).toEqual(['198.18.1.7']);
  });

  it('/31: both addresses (RFC 3021)', () => {
    expect(pool('198.18.1.6/31').drain()).toEqual(['198.18.1.6', '198.18.1.7']);
  });

  it('/30: the two hosts, never network or broadcast', () => {
    expect(pool('198.18.1.4/30').drain()).toEqual(['198.18.1.5', '198.18.1.6']);
  });

  it('/29: six hosts in order', () => {
    expect(pool('198.18.1.8/29').drain()).toEqual([9, 10, 11, 12, 13, 14].map((n) => `198.18.1.${n}`));
  });

  it('/24: 254 hosts, unique, without .0 and .255', () => {
    const all = pool('198.18.1.0/24').drain();
    expect(all).toHaveLength(254);
    expect(new Set(all).size).toBe(254);
    expect(all[0]).toBe('198.18.1.1');
    expect(all.at(-1)).toBe('198.18.1.254');
    expect(all).not.toContain('198.18.1.0');
    expect(all).not.toContain('198.18.1.255');
  });

  it('/16: all 65,534 addresses quickly, then exhaustion without a scan', () => {
    const p = pool('198.18.0.0/16');
    p.lookupBudget = 65534;
    const started = performance.now();
    let count = 0;
    while (p.allocate() !== undefined) count++;
    const elapsed = performance.now() - started;
    expect(count).toBe(65534);
    expect(p.taken.size).toBe(65534);
    expect(p.taken.has(ip('198.18.0.0'))).toBe(false);
    expect(p.taken.has(ip('198.18.255.255'))).toBe(false);
    // Round-robin over a fresh pool finds each address on its first probe.
    expect(p.isTakenCalls).toBe(65534);
    expect(elapsed).toBeLessThan(2000);

    p.isTakenCalls = 0;
    for (let i = 0; i < 1000; i++) expect(p.allocate()).toBeUndefined();
    expect(p.isTakenCalls).toBe(0);
  });

  it('/16 with one hole far behind the cursor: finds it after one pass, not more', () => {
    const p = pool('198.18.0.0/16');
    p.lookupBudget = 65534;
    while (p.allocate() !== undefined);
    p.release('198.18.0.1');
    p.cursor = ip('198.18.0.2');
    p.isTakenCalls = 0;
    p.lookupBudget = 65533;
    expect(p.allocateText()).toBe('198.18.0.1');
    // Every other host once (.0.3 … .255.254, then .0.1); the reserved addresses are not looked up.
    expect(p.isTakenCalls).toBe(65533);
  });

  it('stays inside the ip-range', () => {
    const p = pool('198.18.1.0/24', '198.18.1.16/28');
    const all = p.drain();
    expect(all).toEqual(Array.from({ length: 16 }, (_, i) => `198.18.1.${16 + i}`));
  });

  it('ip-range at the top of the pool skips the broadcast address', () => {
    const all = pool('198.18.1.0/24', '198.18.1.248/29').drain();
    expect(all).toEqual([248, 249, 250, 251, 252, 253, 254].map((n) => `198.18.1.${n}`));
  });

  it('starts after the cursor and skips taken addresses', () => {
    const p = pool('198.18.1.0/24');
    p.taken.add(ip('198.18.1.11')).add(ip('198.18.1.12'));
    p.cursor = ip('198.18.1.10');
    expect(p.allocateText()).toBe('198.18.1.13');
  });

  it('wraps around at the end of the range, past the reserved addresses', () => {
    const p = pool('198.18.1.0/24');
    p.cursor = ip('198.18.1.254');
    expect(p.allocateText()).toBe('198.18.1.1');
    p.cursor = ip('198.18.1.255');
    expect(p.allocateText()).toBe('198.18.1.2');
  });

  it('starts at the bottom when the cursor is outside the range', () => {
    for (const cursor of ['198.18.0.200', '198.18.1.200', '198.18.1.0']) {
      const p = pool('198.18.1.0/24', '198.18.1.64/26');
      p.cursor = ip(cursor);
      expect(p.allocateText()).toBe('198.18.1.64');
    }
  });

  it('does not hand out a released address until every other one has been used', () => {
    const p = pool('198.18.1.0/28'); // .1 to .14
    expect(p.allocateText()).toBe('198.18.1.1');
    expect(p.allocateText()).toBe('198.18.1.2');
    expect(p.allocateText()).toBe('198.18.1.3');
    p.release('198.18.1.2');
    p.release('198.18.1.3');
    const rest = p.drain();
    expect(rest).toEqual([...Array.from({ length: 11 }, (_, i) => `198.18.1.${4 + i}`), '198.18.1.2', '198.18.1.3']);
  });

  it('after a full pass, keeps going round from the last address handed out', () => {
    const p = pool('198.18.1.8/29'); // .9 to .14
    p.drain();
    p.release('198.18.1.10');
    p.release('198.18.1.13');
    expect(p.allocateText()).toBe('198.18.1.10');
    p.release('198.18.1.11');
    expect(p.allocateText()).toBe('198.18.1.11');
    expect(p.allocateText()).toBe('198.18.1.13');
    expect(p.allocateText()).toBeUndefined();
  });

  it('IPv6 /64: skips the subnet-router anycast address, also on wrap-around', () => {
    const p = pool('2001:db8::/64');
    expect(p.allocateText()).toBe('2001:db8::1');
    expect(p.allocateText()).toBe('2001:db8::2');
    p.cursor = ip('2001:db8::ffff:ffff:ffff:fffe');
    expect(p.allocateText()).toBe('2001:db8::ffff:ffff:ffff:ffff');
    expect(p.allocateText()).toBe('2001:db8::3');
  });

  it('IPv6 /127 and /128 use every address', () => {
    expect(pool('2001:db8::/127').drain()).toEqual(['2001:db8::', '2001:db8::1']);
    expect(pool('2001:db8::5/128').drain()).toEqual(['2001:db8::5']);
    expect(pool('2001:db8::/126').drain()).toEqual(['2001:db8::1', '2001:db8::2', '2001:db8::3']);
  });

  it('returns nothing at once when takenCount reaches capacity', () => {
    let calls = 0;
    const range = usableRange(cidr('198.18.0.0/16'));
    expect(nextFree(range, undefined, () => (calls++, false), 65534n)).toBeUndefined();
    expect(nextFree(range, undefined, () => (calls++, false), 70000n)).toBeUndefined();
    expect(calls).toBe(0);
  });

  it('refuses to guess when isTaken reports more holders than takenCount (and never walks a /64)', () => {
    const v6 = usableRange(cidr('2001:db8::/64'));
    let calls = 0;
    const alwaysTaken = () => {
      if (++calls > 1000) throw new Error('walked the /64');
      return true;
    };
    expect(() => nextFree(v6, undefined, alwaysTaken, 10n)).toThrow(IpamError);
    expect(calls).toBe(11);
    const v4 = usableRange(cidr('198.18.1.0/30'));
    expect(() => nextFree(v4, undefined, () => true, 1n)).toThrow(
      new IpamError('allocation from 198.18.1.0-198.18.1.3 found more taken addresses than takenCount 1'),
    );
  });

  it('matches a brute-force round-robin on random small pools', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let round = 0; round < 300; round++) {
      const prefix = 26 + Math.floor(random() * 7); // /26 to /32
      const p = cidr(`198.18.1.0/${prefix}`);
      const range = usableRange(p);
      const all: bigint[] = [];
      for (let v = range.first; v <= range.last; v++) if (!range.excluded.has(v)) all.push(v);
      const taken = new Set(all.filter(() => random() < 0.6));
      const cursor = random() < 0.2 ? undefined : range.first + BigInt(Math.floor(random() * Number(range.last - range.first + 1n)));
      // Reference: the first free address in the circular order that starts just after the cursor.
      const after = all.filter((v) => cursor === undefined || v > cursor);
      const before = all.filter((v) => cursor !== undefined && v <= cursor);
      const expected = [...after, ...before].find((v) => !taken.has(v));
      expect(nextFree(range, cursor, (v) => taken.has(v), BigInt(taken.size))).toBe(expected);
    }
  });
});
