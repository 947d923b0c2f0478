import { describe, expect, it } from 'vitest';
import { fakePlugin } from '../support/plugin.js';

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
});
