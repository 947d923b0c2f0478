import { describe, expect, it } from 'vitest';
import { addressScope, canonicalIp, commonAddresses, isLoopbackHostIp } from '../../../src/expose/hostip.js';

describe('canonicalIp', () => {
  it.each<[string, string]>([
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['0:0::1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    // RFC 5952: the longest zero run is compressed, the first on a tie, never a single group.
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['fe80::', 'fe80::'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    // IPv4-mapped becomes IPv4, as Go's net.IP.String() prints it.
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['::FFFF:7f00:1', '127.0.0.1'],
    ['0:0:0:0:0:ffff:a00:1', '10.0.0.1'],
  ])('%s → %s', (text, canonical) => {
    expect(canonicalIp(text)).toBe(canonical);
  });

  it.each([
    '', 'localhost', '1.2.3', '1.2.3.4.5', '1.2.3.256', '01.2.3.4', '1.2.3.-4', ' 1.2.3.4', '1.2.3.4 ',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1::2::3', '1:2:3:4:5:6:7:8::', ':::', '12345::', ':1::', '1::2:',
    'fe80::1%eth0', '[::1]', '1.2.3.4::', '::1.2.3.4:5', '::1.2.3', 'g::1', '::0x1',
  ])('refuses %j', (text) => {
    expect(canonicalIp(text)).toBeUndefined();
  });
});

describe('addressScope / commonAddresses', () => {
  it('distinguishes both families, one family and one address', () => {
    expect(addressScope(undefined)).toEqual({ kind: 'any' });
    expect(addressScope('0.0.0.0')).toEqual({ kind: 'family', family: 4 });
    expect(addressScope('::')).toEqual({ kind: 'family', family: 6 });
    expect(addressScope('::1')).toEqual({ kind: 'one', family: 6, address: '::1' });
    expect(addressScope('10.0.0.1')).toEqual({ kind: 'one', family: 4, address: '10.0.0.1' });
  });

  it.each<[string | undefined, string | undefined, string | undefined | null]>([
    [undefined, undefined, undefined],
    [undefined, '0.0.0.0', '0.0.0.0'],
    ['::', undefined, '::'],
    [undefined, '10.0.0.1', '10.0.0.1'],
    ['0.0.0.0', '10.0.0.1', '10.0.0.1'],
    ['10.0.0.1', '0.0.0.0', '10.0.0.1'],
    ['0.0.0.0', '0.0.0.0', '0.0.0.0'],
    ['0.0.0.0', '::', null],
    ['0.0.0.0', '::1', null],
    ['::', '127.0.0.1', null],
    ['::', '::1', '::1'],
    ['10.0.0.1', '10.0.0.1', '10.0.0.1'],
    ['10.0.0.1', '10.0.0.2', null],
  ])('%s ∩ %s = %s', (a, b, common) => {
    expect(commonAddresses(a, b)).toBe(common);
  });
});

describe('isLoopbackHostIp', () => {
  it.each<[string | undefined, boolean]>([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    [undefined, false],
    ['0.0.0.0', false],
    ['::', false],
    ['128.0.0.1', false],
    ['10.127.0.1', false],
    ['2001:db8::1', false],
    ['::127.0.0.1', false],
  ])('%s → %s', (hostIp, loopback) => {
    expect(isLoopbackHostIp(hostIp)).toBe(loopback);
  });
});
