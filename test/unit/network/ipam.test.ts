import { describe, expect, it } from 'vitest';
import { fakePlugin } from '../support/plugin.js';
import { keys } from '../../../src/state/state.js';

async function pool(p: Awaited<ReturnType<typeof fakePlugin>>, Pool: string, SubPool = '') {
  return p.ipam.requestPool({ AddressSpace: 'portnet-local', Pool, SubPool, Options: {}, V6: false });
}
const addr = (p: Awaited<ReturnType<typeof fakePlugin>>, PoolID: string, Address = '', Options: Record<string, string> = {}) =>
  p.ipam.requestAddress({ PoolID, Address, Options });

describe('IPAM service', () => {
  it('hands out a /29 round-robin, fails clearly when exhausted, and reuses released addresses last', async () => {
    const p = await fakePlugin();
    const { PoolID } = await pool(p, '198.18.1.0/29');
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push((await addr(p, PoolID)).Address);
    expect(got).toEqual(['198.18.1.1/32', '198.18.1.2/32', '198.18.1.3/32', '198.18.1.4/32', '198.18.1.5/32', '198.18.1.6/32']);
    await expect(addr(p, PoolID)).rejects.toThrow('pool 198.18.1.0/29 is exhausted: all 6 addresses are in use');
    await p.ipam.releaseAddress({ PoolID, Address: '198.18.1.3' });
    await p.ipam.releaseAddress({ PoolID, Address: '198.18.1.5' });
    expect((await addr(p, PoolID)).Address).toBe('198.18.1.3/32');
    expect((await addr(p, PoolID)).Address).toBe('198.18.1.5/32');
  });

  it('does not reuse a just-released address while others are free', async () => {
    const p = await fakePlugin();
    const { PoolID } = await pool(p, '198.18.1.0/24');
    const first = (await addr(p, PoolID)).Address;
    await p.ipam.releaseAddress({ PoolID, Address: first.split('/')[0]! });
    expect((await addr(p, PoolID)).Address).not.toBe(first);
  });

  it('refuses a taken static address, a network/broadcast address, and one outside the pool', async () => {
    const p = await fakePlugin();
    const { PoolID } = await pool(p, '198.18.2.0/24');
    expect((await addr(p, PoolID, '198.18.2.77')).Address).toBe('198.18.2.77/32');
    await expect(addr(p, PoolID, '198.18.2.77')).rejects.toThrow('Address "198.18.2.77" is already in use in pool 198.18.2.0/24');
    await expect(addr(p, PoolID, '198.18.2.255')).rejects.toThrow(/network or broadcast/);
    await expect(addr(p, PoolID, '198.18.3.1')).rejects.toThrow('Address "198.18.3.1" is outside pool 198.18.2.0/24');
  });

  it('reserves --gateway and --aux-address, honours --ip-range, and refuses overlapping pools', async () => {
    const p = await fakePlugin();
    const { PoolID } = await pool(p, '198.18.9.0/24', '198.18.9.128/25');
    expect((await addr(p, PoolID, '198.18.9.254', { RequestAddressType: 'com.docker.network.gateway' })).Address).toBe('198.18.9.254/24');
    await addr(p, PoolID, '198.18.9.253');
    expect((await addr(p, PoolID)).Address).toBe('198.18.9.128/32');
    await expect(pool(p, '198.18.9.128/26')).rejects.toThrow('Pool "198.18.9.128/26" overlaps pool "198.18.9.0/24" that is already in use');
    await expect(pool(p, '198.18.10.0/24', '198.18.11.0/25')).rejects.toThrow(/SubPool "198.18.11.0\/25" is not inside Pool "198.18.10.0\/24"/);
  });

  it('carves subnets from the default range when no --subnet is given, never the same one twice in a row', async () => {
    const p = await fakePlugin({ defaultPool: '198.18.128.0/22', defaultPoolPrefix: 24 });
    const a = await pool(p, '');
    const b = await pool(p, '');
    expect(a.Pool).toBe('198.18.128.0/24');
    expect(b.Pool).toBe('198.18.129.0/24');
    await p.ipam.releasePool(a.PoolID);
    expect((await pool(p, '')).Pool).toBe('198.18.130.0/24');
    await pool(p, '');
    expect((await pool(p, '')).Pool).toBe('198.18.128.0/24');
    await expect(pool(p, '')).rejects.toThrow(/default pool 198.18.128.0\/22 has no free \/24 left/);
  });

  it('an --ip-range is exhausted only when its own addresses are, whatever is held outside it', async () => {
    const p = await fakePlugin();
    const { PoolID } = await pool(p, '198.18.6.0/24', '198.18.6.0/30');
    await addr(p, PoolID, '198.18.6.200', { RequestAddressType: 'com.docker.network.gateway' });
    await addr(p, PoolID, '198.18.6.201');
    expect((await addr(p, PoolID)).Address).toBe('198.18.6.1/32');
    expect((await addr(p, PoolID)).Address).toBe('198.18.6.2/32');
    expect((await addr(p, PoolID)).Address).toBe('198.18.6.3/32');
    await expect(addr(p, PoolID)).rejects.toThrow('pool 198.18.6.0/30 is exhausted: all 3 addresses are in use');
  });

  it('uses every address of /32 and /31 pools, and all but network and broadcast of a /30', async () => {
    const p = await fakePlugin();
    const one = await pool(p, '198.18.7.1/32');
    expect((await addr(p, one.PoolID)).Address).toBe('198.18.7.1/32');
    await expect(addr(p, one.PoolID)).rejects.toThrow('pool 198.18.7.1/32 is exhausted: all 1 addresses are in use');
    const two = await pool(p, '198.18.7.2/31');
    expect([(await addr(p, two.PoolID)).Address, (await addr(p, two.PoolID)).Address]).toEqual(['198.18.7.2/32', '198.18.7.3/32']);
    const four = await pool(p, '198.18.7.4/30');
    expect([(await addr(p, four.PoolID)).Address, (await addr(p, four.PoolID)).Address]).toEqual(['198.18.7.5/32', '198.18.7.6/32']);
    await expect(addr(p, four.PoolID)).rejects.toThrow(/exhausted: all 2 addresses/);
  });

  it('hands out every address of a /16 exactly once', async () => {
    const p = await fakePlugin();
    const { PoolID } = await pool(p, '198.18.0.0/16');
    const seen = new Set<string>();
    for (let i = 0; i < 65534; i++) seen.add((await addr(p, PoolID)).Address);
    expect(seen.size).toBe(65534);
    await expect(addr(p, PoolID)).rejects.toThrow('pool 198.18.0.0/16 is exhausted: all 65534 addresses are in use');
  });

  it('releasing a pool releases its addresses', async () => {
    const p = await fakePlugin();
    const { PoolID } = await pool(p, '198.18.4.0/30');
    await addr(p, PoolID);
    await p.ipam.releasePool(PoolID);
    expect(p.state.allKeys()).toEqual([]);
  });

  describe('IPv6', () => {
    const pool6 = (p: Awaited<ReturnType<typeof fakePlugin>>, Pool: string, SubPool = '') =>
      p.ipam.requestPool({ AddressSpace: 'portnet-local', Pool, SubPool, Options: {}, V6: true });

    it('takes a V6 --subnet, answers fe80::1 as the gateway and hands out /128s round-robin', async () => {
      const p = await fakePlugin();
      const answer = await pool6(p, '2001:db8:1::/64');
      expect(answer).toEqual({ PoolID: '2001:db8:1::/64', Pool: '2001:db8:1::/64', Data: { 'com.docker.network.gateway': 'fe80::1/64' } });
      const got = [];
      for (let i = 0; i < 3; i++) got.push((await addr(p, answer.PoolID)).Address);
      expect(got).toEqual(['2001:db8:1::1/128', '2001:db8:1::2/128', '2001:db8:1::3/128']);
      // Docker releases the gateway it was given in Data: no pool address was spent on it.
      await p.ipam.releaseAddress({ PoolID: answer.PoolID, Address: 'fe80::1' });
      await p.ipam.releaseAddress({ PoolID: answer.PoolID, Address: '2001:db8:1::2' });
      expect((await addr(p, answer.PoolID)).Address).toBe('2001:db8:1::4/128');
      expect(p.state.allocationCount(answer.PoolID)).toBe(3);
    });

    it('reserves a static address and --gateway, and refuses one outside the pool or of the other family', async () => {
      const p = await fakePlugin();
      const { PoolID } = await pool6(p, '2001:db8:2::/64');
      expect((await addr(p, PoolID, '2001:db8:2::ff')).Address).toBe('2001:db8:2::ff/128');
      expect((await addr(p, PoolID, '2001:db8:2::fe', { RequestAddressType: 'com.docker.network.gateway' })).Address).toBe('2001:db8:2::fe/64');
      await expect(addr(p, PoolID, '2001:db8:2::ff')).rejects.toThrow('Address "2001:db8:2::ff" is already in use in pool 2001:db8:2::/64');
      await expect(addr(p, PoolID, '2001:db8:3::1')).rejects.toThrow('Address "2001:db8:3::1" is outside pool 2001:db8:2::/64');
      await expect(addr(p, PoolID, '198.18.2.1')).rejects.toThrow('Address "198.18.2.1" is outside pool 2001:db8:2::/64');
      // The subnet-router anycast address (the subnet's first) is never a host's.
      await expect(addr(p, PoolID, '2001:db8:2::')).rejects.toThrow(/network or broadcast address of pool 2001:db8:2::\/64/);
    });

    it('is exhausted like IPv4 (a /126 has 3 host addresses) and wraps round-robin', async () => {
      const p = await fakePlugin();
      const { PoolID } = await pool6(p, '2001:db8:4::/126');
      const got = [];
      for (let i = 0; i < 3; i++) got.push((await addr(p, PoolID)).Address);
      expect(got).toEqual(['2001:db8:4::1/128', '2001:db8:4::2/128', '2001:db8:4::3/128']);
      await expect(addr(p, PoolID)).rejects.toThrow('pool 2001:db8:4::/126 is exhausted: all 3 addresses are in use');
      await p.ipam.releaseAddress({ PoolID, Address: '2001:db8:4::2' });
      expect((await addr(p, PoolID)).Address).toBe('2001:db8:4::2/128');
    });

    it('allocates from a /64 without walking it, also across the wrap at its end', async () => {
      const p = await fakePlugin();
      const { PoolID } = await pool6(p, '2001:db8:5::/64', '2001:db8:5::/64');
      expect((await addr(p, PoolID, '2001:db8:5:0:ffff:ffff:ffff:fffe')).Address).toBe('2001:db8:5:0:ffff:ffff:ffff:fffe/128');
      expect((await addr(p, PoolID)).Address).toBe('2001:db8:5::1/128');
      // The cursor sits at the top of the range: the next address wraps to the bottom at once.
      await p.state.commit([{ put: keys.cursor(PoolID), value: { address: '2001:db8:5:0:ffff:ffff:ffff:fffd' } }]);
      expect((await addr(p, PoolID)).Address).toBe('2001:db8:5:0:ffff:ffff:ffff:ffff/128');
      expect((await addr(p, PoolID)).Address).toBe('2001:db8:5::2/128');
    });

    it('needs an explicit subnet, the right family and no overlap', async () => {
      const p = await fakePlugin();
      await expect(pool6(p, '')).rejects.toThrow('Pool is empty in a V6 request: IPv6 pools need an explicit --subnet (there is no default IPv6 range)');
      await expect(pool6(p, '198.18.1.0/24')).rejects.toThrow('Pool "198.18.1.0/24" is IPv4 but the request is for IPv6 (V6=true)');
      await expect(pool(p, '2001:db8:6::/64')).rejects.toThrow('Pool "2001:db8:6::/64" is IPv6 but the request is for IPv4 (V6=false)');
      await expect(pool6(p, '2001:db8:6::1/64')).rejects.toThrow('Pool "2001:db8:6::1/64" has host bits set; did you mean "2001:db8:6::/64"?');
      await pool6(p, '2001:db8:6::/64');
      await expect(pool6(p, '2001:db8:6::/80')).rejects.toThrow('Pool "2001:db8:6::/80" overlaps pool "2001:db8:6::/64" that is already in use');
      // Canonical text: the same pool written otherwise is the same pool.
      await expect(pool6(p, '2001:DB8:6:0::/64')).rejects.toThrow(/overlaps pool "2001:db8:6::\/64"/);
    });
  });
});
